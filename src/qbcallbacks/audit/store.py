"""The audit trail: every firing, written as pending before it runs and completed after.

SQLite in WAL mode, so `qbcallbacks history` can read while a dispatcher writes. One process
writes a database at a time (an OS lock on `<db>.lock`; ids come from SQLite); readers are
unlimited.

Durability: a batch of pending firings is committed before any of them runs, so a host that
dies leaves them pending and the next start finds them (`recover`). Completions are buffered
and committed by `flush` (the dispatcher flushes after every batch and when idle); a completion
lost in a crash leaves its firing pending, which recovery re-runs or reports: a firing may run
twice after a crash, it is never lost silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from ..errors import QbCallbacksError
from ..lang.source import file_kind_name
from ..model.events import Event
from . import producers
from .journal import Position
from .records import (
    EXCERPT_HEAD,
    EXCERPT_TAIL,
    EventRecord,
    FiringRecord,
    PendingFiring,
    excerpt,
)

__all__ = ["EXCERPT_HEAD", "EXCERPT_TAIL", "AuditError", "AuditInUse", "AuditStore",
           "EventRecord", "FiringRecord", "PendingFiring", "excerpt"]

#: A batch's events: number in the session, the event, the job as JSON text (or a dict).
EventRow = tuple[int, Event, str | dict[str, Any] | None]

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


class AuditError(QbCallbacksError):
    """The audit database cannot be opened or written."""


class AuditInUse(AuditError):
    """Another live process writes this audit database; one writer at a time."""


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
    """A connection to one audit database; thread-safe (one lock around one connection).

    A writer holds an OS lock on `<db>.lock` (which names its pid and host) for as long as it
    is open, so a second writer fails at once with `AuditInUse` instead of claiming the live
    writer's firings; readers (`readonly=True`) never lock.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, busy_timeout: float = 5.0,
                 synchronous: Literal["normal", "full"] = "normal") -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._buffer: list[tuple[Any, ...]] = []
        self._lock_fd = -1
        self.session: int = 0
        #: True when the session before this writer's never closed: its host died.
        self.previous_session_died = False
        #: True when this writer's session is the first of the database.
        self.first_session = True
        try:
            self._refuse_special_file()
            if readonly:
                if not self.path.exists():
                    raise AuditError(f"no audit database at {self.path}")
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._take_writer_lock()
                self._db = sqlite3.connect(self.path, check_same_thread=False,
                                           isolation_level=None)
                self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL: a commit survives a crash of the process; FULL also survives
                # a power loss, at the cost of an fsync per commit.
                self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
                self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except (sqlite3.Error, OSError) as exc:
            self._release_writer_lock()
            raise AuditError(f"cannot open the audit database {self.path}: {exc}") from exc
        except AuditError:
            self._release_writer_lock()
            raise

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

    def release_writer(self) -> None:
        """Stop writing (after a flush) and let another writer in; reading keeps working."""
        with self._lock:
            if not self.readonly:
                self.flush()
                self.readonly = True
            self._release_writer_lock()

    # -- writing ---------------------------------------------------------------------------

    def begin_session(self, note: str = "") -> int:
        """Start this writer's session; pending firings of earlier sessions are the crashed
        ones, and an earlier session never closed means its host died."""
        with self._lock:
            row = self._db.execute(
                "SELECT closed_at FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
            self.previous_session_died = row is not None and row[0] is None
            self.first_session = row is None
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

    def record_batch(self, events: Iterable[EventRow], firings: Sequence[PendingFiring],
                     position: Position | None = None, journal_seq: int = 0) -> list[int]:
        """Commit events and their pending firings in one transaction, with the journal
        position (and journal number) they were read up to; returns the firings' ids
        (allocated by SQLite)."""
        now = time.time()
        ev_rows = [(self.session, seq, event.name, event.type, event.job, event.extra,
                    job_data if job_data is None or isinstance(job_data, str)
                    else json.dumps(job_data), now) for seq, event, job_data in events]
        with self._lock:
            with self._transaction():
                written = self._write_completions()
                if ev_rows:
                    self._db.executemany(
                        "INSERT INTO events(session, seq, name, type, job, extra, job_data, at) "
                        "VALUES (?,?,?,?,?,?,?,?)", ev_rows)
                ids = []
                for f in firings:
                    cur = self._db.execute(
                        "INSERT INTO firings(session, event_seq, ordinal, event, event_name, "
                        "event_type, event_job, event_extra, job, callback, directory, trigger, "
                        "language, code, status, queued_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'pending',?)",
                        (self.session, f.event_seq, f.ordinal, f.event.format(), f.event.name,
                         f.event.type, f.event.job, f.event.extra, f.job, f.callback,
                         f.directory, f.trigger, f.language, f.code, now))
                    ids.append(int(cur.lastrowid or 0))
                if position is not None:
                    self._db.execute(
                        "INSERT INTO journal_position(id, segment, offset, seq) "
                        "VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET segment=excluded."
                        "segment, offset=excluded.offset, seq=MAX(seq, excluded.seq)",
                        (position.segment, position.offset, journal_seq))
            del self._buffer[:written]
        return ids

    def start(self, firing_id: int, started_at: float) -> int:
        """Count a run's attempt, committed before it starts (a run that kills the host is
        then known on restart); returns the attempts so far, this one included."""
        with self._lock:
            with self._transaction():
                # Outcomes buffered so far ride along: a finished run is not taken for one
                # the host died in.
                written = self._write_completions()
                row = self._db.execute(
                    "UPDATE firings SET attempts=attempts+1, started_at=? WHERE id=? "
                    "RETURNING attempts", (started_at, firing_id)).fetchone()
            del self._buffer[:written]
        return int(row[0]) if row else 0

    def complete(self, firing_id: int, status: str, *, exit_code: int | None = None,
                 output: str = "", error: str | None = None, started_at: float | None = None,
                 finished_at: float | None = None, duration: float | None = None) -> None:
        """Buffer a firing's outcome; written at the next `flush` (or batch)."""
        row = (status, exit_code, excerpt(output), error, started_at, finished_at, duration,
               firing_id)
        with self._lock:
            self._buffer.append(row)

    def flush(self) -> None:
        """Commit buffered completions; on failure they stay buffered for the next try."""
        with self._lock:
            if not self._buffer:
                return
            with self._transaction():
                written = self._write_completions()
            del self._buffer[:written]

    def _write_completions(self) -> int:
        n = len(self._buffer)
        if n:
            self._db.executemany(
                "UPDATE firings SET status=?, exit_code=?, output=?, error=?, "
                "started_at=COALESCE(started_at, ?), finished_at=?, duration=?, "
                "attempts=MAX(attempts, 1) WHERE id=?", self._buffer[:n])
        return n

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction under the lock, committed at the end of the block or rolled
        back whatever failed inside it (a SQLite failure is raised as an `AuditError`)."""
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

    def load_producers(self) -> producers.Checkpoint:
        """The service's producer checkpoint (`audit.producers`)."""
        with self._transaction():
            for sql in producers.schema(trail_column=False):
                self._db.execute(sql)
            return producers.load(self._db)

    def save_producers(self, rows: Sequence[producers.ProducerRow], position: Position,
                       keep: int) -> None:
        with self._transaction():
            producers.save(self._db, rows, position, keep)

    def journal_position(self) -> tuple[Position, int]:
        """Where the matched part of the journal ends, and the last journal number matched."""
        with self._lock:
            row = self._db.execute(
                "SELECT segment, offset, seq FROM journal_position WHERE id = 1").fetchone()
        if row is None:
            return Position(1, 0), 0
        return Position(int(row[0]), int(row[1])), int(row[2])

    def claim_orphans(self) -> list[FiringRecord]:
        """Pending firings left by earlier sessions (a crashed host), oldest first; they are
        moved into this session so a second crash finds them again. All at once: a restart
        reads them a page at a time instead (`adopt_orphans`, `claimed`)."""
        return self.claimed(0, self.adopt_orphans()[1])

    def adopt_orphans(self) -> tuple[int, int]:
        """Move the pending firings of earlier sessions (a crashed host's) into this session,
        so a second crash finds them again; returns how many and the highest id among them.
        Firings recorded later get higher ids, so `claimed(0, highest)` reads exactly these."""
        with self._transaction():
            count, top = self._db.execute(
                "SELECT COUNT(*), MAX(id) FROM firings WHERE status='pending' "
                "AND session != ?", (self.session,)).fetchone()
            if count:
                self._db.execute("UPDATE firings SET session=? WHERE status='pending' "
                                 "AND session != ?", (self.session, self.session))
        return int(count), int(top or 0)

    def claimed(self, after: int, upto: int, limit: int | None = None) -> list[FiringRecord]:
        """This session's firings with `after < id <= upto`, oldest first, at most `limit`
        (after `adopt_orphans`: a page of the orphans, as they stand now)."""
        sql = f"SELECT {_COLUMNS} FROM firings WHERE session = ? AND id > ? AND id <= ? ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            try:
                rows = self._db.execute(sql, (self.session, after, upto)).fetchall()
            except sqlite3.Error as exc:
                raise AuditError(f"cannot read the audit trail: {exc}") from exc
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            try:
                if not self.readonly:
                    self.flush()
            finally:
                self._db.close()
                self._release_writer_lock()

    # -- reading ---------------------------------------------------------------------------

    def query(self, *, job: int | None = None, callback: str | None = None,
              status: str | Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, session: int | None = None,
              limit: int | None = None, newest_first: bool = False,
              after_id: int | None = None, ids: Sequence[int] | None = None,
              ) -> list[FiringRecord]:
        """Firings filtered by attached job, callback name, status(es), queue time, session,
        and id (`after_id` for a tail, `ids` to read given firings again)."""
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
        if after_id is not None:  # a tail: only firings recorded after this one
            where.append("id > ?")
            args.append(after_id)
        if ids is not None:  # given firings again, for their status now
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
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
