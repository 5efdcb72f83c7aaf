"""Where a trail lives: a file path (SQLite, `audit.sqlite`) or a `postgresql://` URL
(`audit.pgstore`, loaded only when asked for). Every command and the dispatcher open trails and
journals through these functions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .journal import Journal
from .sql import SqlTrail
from .sqlite import SqliteAuditStore
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
    """The event journal that goes with `store`: `<db>.events/` next to a SQLite file, the
    `journal` table of a PostgreSQL trail."""
    if getattr(store, "dsn", None) is not None:
        from .pgjournal import PgJournal
        from .pgstore import PgAuditStore

        if isinstance(store, PgAuditStore):
            return PgJournal(store, fsync=fsync)
    return Journal(store.path.with_name(store.path.name + ".events"), fsync=fsync)
