"""The audit trail: every firing, written as pending before it runs and completed after.

SQLite in WAL mode, so `qbcallbacks history` can read while a dispatcher writes. One dispatcher
writes a database at a time (ids are allocated by the writer); readers are unlimited.

Durability: a batch of pending firings is committed before any of them runs, so a host that
dies leaves them pending and the next start finds them (`recover`). Completions are buffered
and committed by `flush` (the dispatcher flushes after every batch and when idle); a completion
lost in a crash leaves its firing pending, which recovery re-runs or reports: a firing may run
twice after a crash, it is never lost silently.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import QbCallbacksError
from ..model._base import Frozen
from ..model.events import Event
from ..model.statuses import FiringStatus

#: How much of a run's output the trail keeps: the head and the tail, joined by a marker.
EXCERPT_HEAD = 2000
EXCERPT_TAIL = 1000

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
"""


class AuditError(QbCallbacksError):
    """The audit database cannot be opened or written."""


class PendingFiring(Frozen):
    """A firing about to run, as the dispatcher records it."""

    event_seq: int
    ordinal: int
    event: Event
    job: int
    callback: str
    directory: str
    trigger: str
    language: str
    code: str | None = None


class FiringRecord(PendingFiring):
    """One row of the trail: the firing as recorded, and what became of it."""

    id: int
    session: int
    code: str | None
    status: FiringStatus
    exit_code: int | None
    output: str
    error: str | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    attempts: int

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"event", "code"})
        data["event"] = self.event.format()
        data["event_name"], data["event_type"] = self.event.name, self.event.type
        data["event_job"], data["event_extra"] = self.event.job, self.event.extra
        return data


class EventRecord(Frozen):
    """One recorded event, with what was known of its job when it was emitted."""

    session: int
    seq: int
    event: Event
    job_data: dict[str, Any] | None
    at: float


def excerpt(output: str) -> str:
    """The head and tail of a long output, with how much was cut in between."""
    if len(output) <= EXCERPT_HEAD + EXCERPT_TAIL:
        return output
    cut = len(output) - EXCERPT_HEAD - EXCERPT_TAIL
    return f"{output[:EXCERPT_HEAD]}\n[... {cut} characters cut ...]\n{output[-EXCERPT_TAIL:]}"


_COLUMNS = ("id, session, event_seq, ordinal, event_name, event_type, event_job, event_extra, "
            "job, callback, directory, trigger, language, code, status, exit_code, output, error, "
            "queued_at, started_at, finished_at, duration, attempts")


def _record(row: Sequence[Any]) -> FiringRecord:
    (fid, session, seq, ordinal, ename, etype, ejob, eextra, job, callback, directory, trigger,
     language, code, status, exit_code, output, error, queued, started, finished, duration,
     attempts) = row
    return FiringRecord(
        id=fid, session=session, event_seq=seq, ordinal=ordinal,
        event=Event(name=ename, type=etype, job=ejob, extra=eextra), job=job,
        callback=callback, directory=directory, trigger=trigger, language=language, code=code,
        status=status, exit_code=exit_code, output=output, error=error, queued_at=queued,
        started_at=started, finished_at=finished, duration=duration, attempts=attempts)


class AuditStore:
    """A connection to one audit database; thread-safe (one lock around one connection)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._buffer: list[tuple[Any, ...]] = []
        self.session: int = 0
        try:
            if readonly:
                if not self.path.exists():
                    raise AuditError(f"no audit database at {self.path}")
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False,
                                           isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL: a commit survives a crash of the process (our threat); only
                # a power loss may undo the last transactions.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            self._db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open the audit database {self.path}: {exc}") from exc
        self._next_id = 1
        self._next_event = 1
        if not readonly:
            self._next_id = self._scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM firings")
            self._next_event = self._scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM events")

    def _scalar(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- writing ---------------------------------------------------------------------------

    def begin_session(self, note: str = "") -> int:
        """Start this writer's session; pending firings of earlier sessions are the crashed
        ones."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO sessions(pid, started_at, note) VALUES (?, ?, ?)",
                (os.getpid(), time.time(), note))
            self.session = int(cur.lastrowid or 0)
        return self.session

    def end_session(self) -> None:
        with self._lock:
            self.flush()
            self._db.execute("UPDATE sessions SET closed_at = ? WHERE id = ?",
                             (time.time(), self.session))

    def record_batch(self, events: Iterable[tuple[int, Event, dict[str, Any] | None]],
                     firings: Sequence[PendingFiring]) -> list[int]:
        """Commit events and their pending firings in one transaction; returns firing ids."""
        now = time.time()
        with self._lock:
            ev_rows = []
            for seq, event, job_data in events:
                ev_rows.append((self._next_event, self.session, seq, event.name, event.type,
                                event.job, event.extra,
                                None if job_data is None else json.dumps(job_data), now))
                self._next_event += 1
            ids = list(range(self._next_id, self._next_id + len(firings)))
            self._next_id += len(firings)
            rows = [(fid, self.session, f.event_seq, f.ordinal, f.event.format(), f.event.name,
                     f.event.type, f.event.job, f.event.extra, f.job, f.callback, f.directory,
                     f.trigger, f.language, f.code, "pending", now)
                    for fid, f in zip(ids, firings, strict=True)]
            try:
                self._db.execute("BEGIN")
                self._write_completions()
                if ev_rows:
                    self._db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                                         ev_rows)
                if rows:
                    self._db.executemany(
                        "INSERT INTO firings(id, session, event_seq, ordinal, event, event_name, "
                        "event_type, event_job, event_extra, job, callback, directory, trigger, "
                        "language, code, status, queued_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
        return ids

    def complete(self, firing_id: int, status: str, *, exit_code: int | None = None,
                 output: str = "", error: str | None = None, started_at: float | None = None,
                 finished_at: float | None = None, duration: float | None = None) -> None:
        """Buffer a firing's outcome; written at the next `flush` (or batch)."""
        row = (status, exit_code, excerpt(output), error, started_at, finished_at, duration,
               firing_id)
        with self._lock:
            self._buffer.append(row)

    def flush(self) -> None:
        """Commit buffered completions."""
        with self._lock:
            if not self._buffer:
                return
            try:
                self._db.execute("BEGIN")
                self._write_completions()
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise AuditError(f"cannot write the audit trail: {exc}") from exc

    def _write_completions(self) -> None:
        if self._buffer:
            self._db.executemany(
                "UPDATE firings SET status=?, exit_code=?, output=?, error=?, started_at=?, "
                "finished_at=?, duration=?, attempts=attempts+1 WHERE id=?", self._buffer)
            self._buffer.clear()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def claim_orphans(self) -> list[FiringRecord]:
        """Pending firings left by earlier sessions (a crashed host), oldest first; they are
        moved into this session so a second crash finds them again."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM firings WHERE status='pending' AND session != ? "
                "ORDER BY id", (self.session,)).fetchall()
            if rows:
                self._db.execute("UPDATE firings SET session=? WHERE status='pending' "
                                 "AND session != ?", (self.session, self.session))
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            if not self.readonly:
                try:
                    self.flush()
                finally:
                    self._db.close()
            else:
                self._db.close()

    # -- reading ---------------------------------------------------------------------------

    def query(self, *, job: int | None = None, callback: str | None = None,
              status: str | Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, session: int | None = None,
              limit: int | None = None, newest_first: bool = False) -> list[FiringRecord]:
        """Firings filtered by attached job, callback name, status(es), queue time, session."""
        where: list[str] = []
        args: list[Any] = []
        if job is not None:
            where.append("job = ?")
            args.append(job)
        if callback is not None:
            where.append("callback = ?")
            args.append(callback)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        if since is not None:
            where.append("queued_at >= ?")
            args.append(since)
        if until is not None:
            where.append("queued_at < ?")
            args.append(until)
        if session is not None:
            where.append("session = ?")
            args.append(session)
        sql = f"SELECT {_COLUMNS} FROM firings"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_record(r) for r in rows]

    def events(self, session: int | None = None) -> list[EventRecord]:
        """Recorded events in stream order (of one session, or all)."""
        rows = self._select("SELECT session, seq, name, type, job, extra, job_data, at "
                            "FROM events", session, " ORDER BY id")
        return [EventRecord(session=s, seq=q, event=Event(name=n, type=t, job=j, extra=x),
                            job_data=None if d is None else json.loads(d), at=a)
                for s, q, n, t, j, x, d, a in rows]

    def counts(self, session: int | None = None) -> dict[tuple[str, str], int]:
        """Number of firings per (callback, status)."""
        rows = self._select("SELECT callback, status, COUNT(*) FROM firings", session,
                            " GROUP BY callback, status ORDER BY callback, status")
        return {(c, s): n for c, s, n in rows}

    def _select(self, head: str, session: int | None, tail: str) -> list[Any]:
        """`head`, restricted to one session when given, then `tail`."""
        args: list[Any] = [] if session is None else [session]
        sql = head + ("" if session is None else " WHERE session = ?") + tail
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def sessions(self) -> list[tuple[int, int, float, float | None, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, pid, started_at, closed_at, note FROM sessions ORDER BY id").fetchall()
        return [tuple(r) for r in rows]
