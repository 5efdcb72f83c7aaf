"""Where a trail lives: a file path (SQLite, `audit.store`) or a `postgresql://` URL
(`audit.pgstore`, loaded only when asked for). Every command and the dispatcher open trails and
journals through these two functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from .journal import Journal
from .store import AuditError, AuditStore


def is_url(location: object) -> bool:
    """True for a PostgreSQL URL (`postgresql://...` or `postgres://...`)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def store_class(location: str | Path) -> type[AuditStore]:
    """The class that opens `location` (to extend a store whatever its backend)."""
    if is_url(location):
        try:
            from .pgstore import PgAuditStore
        except ImportError as exc:
            raise AuditError("a postgresql:// audit database needs psycopg 3 "
                             "(pip install 'qbcallbacks[postgresql]')") from exc
        return PgAuditStore
    return AuditStore


def open_audit(location: str | Path, *, readonly: bool = False, busy_timeout: float = 5.0,
               synchronous: Literal["normal", "full"] = "normal") -> AuditStore:
    """The trail at `location`: SQLite for a path, PostgreSQL for a URL."""
    cls = store_class(location)
    return cls(str(location) if cls is not AuditStore else location, readonly=readonly,
               busy_timeout=busy_timeout, synchronous=synchronous)


def open_journal(store: AuditStore, *, fsync: bool = False) -> Journal:
    """The event journal that goes with `store`: `<db>.events/` next to a SQLite file, the
    `journal` table of a PostgreSQL trail."""
    pgstore = sys.modules.get("qbcallbacks.audit.pgstore")  # loaded if a URL was opened
    if pgstore is not None and isinstance(store, pgstore.PgAuditStore):
        from .pgjournal import PgJournal

        journal: Journal = PgJournal(store, fsync=fsync)
    else:
        journal = Journal(store.path.with_name(store.path.name + ".events"), fsync=fsync,
                          file_mode=getattr(store, "file_mode", None))
    # What a user of the trail still has to read back (the service's producer keys).
    journal.keep_from = getattr(store, "journal_keep_from", None)
    return journal
