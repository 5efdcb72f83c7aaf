"""Where a trail lives: a file path (SQLite, `audit.sqlite`) or a `postgresql://` URL
(`audit.pgstore`, loaded only when asked for). Every command and the dispatcher open trails and
journals through these functions.

The event journal is a local file journal (`audit.journal`) for both backends: `<db>.events/`
next to a SQLite file; for a PostgreSQL trail the directory the URL names with
`?journal=DIR`, else `qbcallbacks/journals/<database>-<trail>-<digest>` under
`$XDG_STATE_HOME` (`~/.local/state`), with the trail's run marks (`audit.marks`).
`?journal=table` keeps both in the trail's database instead (`audit.pgjournal`), so that a
host taking over a trail finds the events another host accepted and never matched, at the
cost of a round trip per `emit` and per run: spec/service.md, "Where an accepted event
waits", weighs the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .journal import Journal
from .sql import SqlTrail
from .sqlite import SqliteAuditStore, journal_directory
from .store import AuditError, AuditStore, EventJournal


def is_url(location: object) -> bool:
    """True for a PostgreSQL URL (`postgresql://...` or `postgres://...`)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def store_class(location: str | Path) -> type[SqlTrail]:
    """The class that opens `location` (to extend a store whatever its backend)."""
    if is_url(location):
        try:
            from .pgstore import PgAuditStore
        except ImportError as exc:
            raise AuditError("a postgresql:// audit database needs psycopg 3 "
                             "(pip install 'qbcallbacks[postgresql]')") from exc
        return PgAuditStore
    return SqliteAuditStore


def open_audit(location: str | Path, *, readonly: bool = False, busy_timeout: float = 5.0,
               synchronous: Literal["normal", "full"] = "normal") -> AuditStore:
    """The trail at `location`: SQLite for a path, PostgreSQL for a URL."""
    cls = store_class(location)
    return cls(location, readonly=readonly, busy_timeout=busy_timeout, synchronous=synchronous)


def open_journal(store: AuditStore, *, fsync: bool = False) -> EventJournal:
    """The event journal that goes with `store` (see the module's docstring)."""
    directory = journal_dir(store)
    journal: EventJournal
    if directory is None:
        from .pgjournal import PgJournal
        from .pgstore import PgAuditStore

        assert isinstance(store, PgAuditStore)  # only its URL asks for the table
        journal = PgJournal(store, fsync=fsync)
    else:
        journal = Journal(directory, fsync=fsync, file_mode=getattr(store, "file_mode", None))
    # What a user of the trail still has to read back (the service's producer keys).
    journal.keep_from = getattr(store, "journal_keep_from", None)
    return journal


def journal_dir(store: AuditStore) -> Path | None:
    """The directory of `store`'s local journal; None when it is kept in the database."""
    if getattr(store, "dsn", None) is None:  # a SQLite file: never loads psycopg
        return journal_directory(store.path)
    from .pgstore import PgAuditStore

    if not isinstance(store, PgAuditStore):
        raise AuditError(f"no event journal goes with the trail {store}")
    return None if store.journal_option == "table" else store.journal_dir()
