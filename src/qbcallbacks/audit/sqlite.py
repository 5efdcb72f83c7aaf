"""The audit trail in a SQLite file: what differs from the shared part (`audit.sql`).

WAL mode, so `qbcallbacks history` can read while a dispatcher writes. One process writes a
database at a time: an OS lock on `<db>.lock`, which names its pid and host; ids come from
SQLite; readers (`readonly=True`) never lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ..lang.source import file_kind_name
from . import producers
from .globals import SCHEMA as GLOBALS_SCHEMA
from .globals import SqliteRunner
from .marks import Mark, RunMarks
from .sql import SqlTrail
from .sqlrows import placeholders, run_rows
from .statements import Rows, statements
from .store import AuditError, AuditInUse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    closed_at REAL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    job INTEGER NOT NULL,
    extra TEXT,
    job_data TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS firings (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    event_seq INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    event TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_job INTEGER NOT NULL,
    event_extra TEXT,
    job INTEGER NOT NULL,
    callback TEXT NOT NULL,
    directory TEXT NOT NULL,
    trigger TEXT NOT NULL,
    language TEXT NOT NULL,
    code TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    output TEXT NOT NULL DEFAULT '',
    error TEXT,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    duration REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS firings_job ON firings(job);
CREATE INDEX IF NOT EXISTS firings_callback ON firings(callback);
CREATE INDEX IF NOT EXISTS firings_status ON firings(status);
CREATE INDEX IF NOT EXISTS firings_queued ON firings(queued_at);
CREATE INDEX IF NOT EXISTS events_session ON events(session, seq);
CREATE TABLE IF NOT EXISTS journal_position (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
"""


#: A batch's rows, many to a statement (`audit.sqlrows`): its events; its firings with the
#: ids drawn for them; the outcomes and run marks waiting (as `statements`' own).
_EVENTS = ("INSERT INTO events(session, seq, name, type, job, extra, job_data, at)",
           placeholders(8))
_FIRINGS = ("INSERT INTO firings(id, session, event_seq, ordinal, event, event_name, event_type, "
            "event_job, event_extra, job, callback, directory, trigger, language, code, "
            "queued_at, status)", placeholders(16, then="'pending'"))
_OUTCOMES = ("UPDATE firings SET status = u.column1, exit_code = u.column2, "
             "output = u.column3, error = u.column4, "
             "started_at = COALESCE(firings.started_at, u.column5), finished_at = u.column6, "
             "duration = u.column7, attempts = MAX(firings.attempts, 1) FROM (",
             placeholders(8), ") AS u WHERE firings.id = u.column8")
_MARKS = ("UPDATE firings SET attempts = MAX(firings.attempts, u.column1), "
          "started_at = u.column2 FROM (", placeholders(3), ") AS u WHERE firings.id = u.column3")


def journal_directory(db: Path) -> Path:
    """Where the local journal and run marks of the trail in file `db` live."""
    return db.with_name(db.name + ".events")


class SqliteAuditStore(SqlTrail):
    """One SQLite audit database (see `audit.store` for the contract)."""

    SQL = statements("?", scoped=False)
    SESSION_INSERT = "INSERT INTO sessions(pid, started_at, note) VALUES (?, ?, ?) RETURNING id"
    POSITION_GET = "SELECT segment, offset, seq FROM journal_position WHERE id = 1"
    POSITION_PUT = ("INSERT INTO journal_position(id, segment, offset, seq) VALUES (1, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET segment = excluded.segment, "
                    "offset = excluded.offset, seq = CASE WHEN excluded.seq > seq "
                    "THEN excluded.seq ELSE seq END")

    def __init__(self, path: str | Path, *, readonly: bool = False, busy_timeout: float = 5.0,
                 synchronous: Literal["normal", "full"] = "normal") -> None:
        self._setup(Path(path), readonly=readonly)
        self._lock_fd = -1
        try:
            self._refuse_special_file()
            self._db = self._connect(busy_timeout, synchronous)
        except (sqlite3.Error, OSError) as exc:
            self._release_writer_lock()
            raise AuditError(f"cannot open the audit database {self.path}: {exc}") from exc
        except AuditError:
            self._release_writer_lock()
            raise
        if not readonly and synchronous != "full":  # FULL: each attempt waits for the disk
            try:
                self._marks = RunMarks(journal_directory(self.path) / "runs.marks")
            except AuditError:
                self._db.close()
                self._release_writer_lock()
                raise

    def _connect(self, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
        if self.readonly:
            if not self.path.exists():
                raise AuditError(f"no audit database at {self.path}")
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._take_writer_lock()
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL: a commit survives a crash of the process; FULL also survives a
            # power loss, at the cost of an fsync per commit.
            db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            db.executescript(_SCHEMA)
            for sql in [*producers.schema(trail_column=False), GLOBALS_SCHEMA["sqlite"]]:
                db.execute(sql)
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        return db

    def _refuse_special_file(self) -> None:
        """A FIFO would block the open for ever, a device would be written to: only a regular
        file (or none yet) is an audit database."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISREG(mode):
            raise AuditError(f"cannot open the audit database {self.path}: it is "
                             f"{file_kind_name(mode)}, not a regular file")

    def _take_writer_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise AuditInUse(f"the audit database {self.path} is being written by {holder}; "
                             "one writer at a time (read it with `qbcallbacks history`)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        self._lock_fd = fd

    def _release_writer_lock(self) -> None:
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing the descriptor drops the lock
            self._lock_fd = -1

    def _disconnect(self) -> None:
        self._close_marks()
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
            except BaseException:
                self._rollback()  # never leave a transaction open behind any failure
                raise

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise AuditError(f"{self.path} is not a readable audit database ({exc})"
                                 ) from exc

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._db.execute(sql, args)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def _insert_events(self, rows: Sequence[Sequence[Any]]) -> None:
        run_rows(self._db, *_EVENTS, rows)

    def _insert_firings(self, rows: Sequence[Sequence[Any]]) -> Callable[[], list[int]]:
        """The ids are the ones SQLite would draw (one past the highest), given explicitly,
        since this writer alone inserts while it holds the transaction."""
        top = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM firings").fetchone()[0])
        ids = list(range(top + 1, top + 1 + len(rows)))
        run_rows(self._db, *_FIRINGS, [(fid, *row) for fid, row in zip(ids, rows, strict=True)])
        return lambda: ids

    def _write_outcomes(self, outcomes: list[tuple[Any, ...]]) -> None:
        run_rows(self._db, _OUTCOMES[0], _OUTCOMES[1], outcomes, _OUTCOMES[2])

    def _ship_marks(self, marks: list[Mark]) -> None:
        latest = {fid: (attempt, started) for fid, attempt, started in sorted(marks)}
        run_rows(self._db, _MARKS[0], _MARKS[1], [(a, s, fid) for fid, (a, s) in latest.items()],
                 _MARKS[2])

    def _global_runner(self) -> SqliteRunner:
        return SqliteRunner(self._lock, self._db, self._transaction)

    def _session_values(self, note: str) -> tuple[Any, ...]:
        return (os.getpid(), time.time(), note)
