"""The logic both trail backends share, written once, over their shared statements
(`audit.statements`).

`SqlTrail` holds every rule the SQLite and PostgreSQL trails have in common: what a batch
writes, how an attempt is counted, how outcomes are buffered and committed, how a dead host's
firings are adopted and how the trail is read. A backend (`audit.sqlite`, `audit.pgstore`)
supplies only what differs: its connection and locking, its transactions, its placeholder and
whether rows carry a trail name, the statements of its own tables (sessions, the journal
position), how a batch of inserts returns its ids, and where its run marks live.

A run's attempt is counted by a run mark (`audit.marks`) appended next to the local journal,
shipped to the trail with the next batch or flush; a trail whose commits must reach the disk
(`synchronous="full"`), or whose journal is in the database, counts each attempt in a
transaction of its own instead."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from ..model.events import Event
from . import producers
from .globals import GlobalTable, SqlRunner
from .journal import Position
from .marks import Mark, RunMarks
from .records import EventRecord, FiringRecord, PendingFiring, excerpt
from .statements import COLUMNS, Rows, Statements, record
from .store import EventRow, SessionRow


def _same(value: str | None) -> str | None:
    return value


class _Statements:
    """A backend's statement runner, as `audit.producers` calls a connection."""

    def __init__(self, run: Callable[[str, Sequence[Any]], Rows]) -> None:
        self._run = run

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._run(sql, args)


class SqlTrail:
    """One open trail: the shared part of both backends; thread-safe (a lock around the
    connection, another around the outcomes waiting to be written).

    Subclasses set `SQL` (from `statements`), `_scope` (the trail-name arguments that scoped
    statements take first), and implement the connection hooks below."""

    SQL: Statements
    #: Statements of the backend's own tables.
    SESSION_INSERT: str
    POSITION_GET: str
    POSITION_PUT: str
    #: How text is made storable (PostgreSQL cannot hold NUL characters).
    text = staticmethod(_same)

    def __init__(self, location: str | Path, *, readonly: bool = False,
                 busy_timeout: float = 5.0,
                 synchronous: Literal["normal", "full"] = "normal") -> None:
        """Open the trail at `location` (each backend's own constructor)."""
        raise NotImplementedError

    def _setup(self, path: Path, *, readonly: bool, scope: tuple[Any, ...] = ()) -> None:
        """The shared state; called first by each backend's constructor."""
        self.path = path
        self.readonly = readonly
        self._scope = scope
        self._lock = threading.RLock()
        #: Outcomes waiting for a write, under a lock of their own: a run's end never waits
        #: for the connection.
        self._buffer: list[tuple[Any, ...]] = []
        self._buffer_lock = threading.Lock()
        self.session = 0
        self.previous_session_died = False
        self.first_session = True
        #: Where runs' attempts are marked (None: each is committed to the trail).
        self._marks: RunMarks | None = None

    # -- what a backend supplies -----------------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction under the lock, committed at the end of the block or rolled
        back whatever failed in it; a database error is raised as an `AuditError`."""
        raise NotImplementedError

    def _reading(self) -> contextlib.AbstractContextManager[None]:
        """A use of the connection under the lock; a database error becomes an `AuditError`."""
        raise NotImplementedError

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        raise NotImplementedError

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _insert_events(self, rows: Sequence[Sequence[Any]]) -> None:
        self._run_many(self.SQL.insert_events, rows)

    def _insert_firings(self, rows: Sequence[Sequence[Any]]) -> Callable[[], list[int]]:
        """Insert pending firings (rows of `SQL.insert_firing`); what gives their ids in row
        order once the transaction is committed (so no answer is awaited before the commit)."""
        raise NotImplementedError

    def _session_values(self, note: str) -> tuple[Any, ...]:
        raise NotImplementedError

    def _disconnect(self) -> None:
        """Close the connection (no flush, no session end)."""
        raise NotImplementedError

    def _release_writer_lock(self) -> None:
        raise NotImplementedError

    def _write_outcomes(self, outcomes: list[tuple[Any, ...]]) -> None:
        """Write buffered outcomes (rows of `SQL.complete`) in the caller's transaction."""
        self._run_many(self.SQL.complete, outcomes)

    def _ship_marks(self, marks: list[Mark]) -> None:
        """Write run marks to the trail as absolute attempt numbers (shipping twice changes
        nothing), in the caller's transaction."""
        latest = {fid: (attempt, started) for fid, attempt, started in sorted(marks)}
        self._run_many(self.SQL.mark, [(a, a, s, fid) for fid, (a, s) in latest.items()])

    def _close_marks(self) -> None:
        if self._marks is not None:
            self._marks.close()

    # -- writing ---------------------------------------------------------------------------

    def begin_session(self, note: str = "") -> int:
        """Start this writer's session; pending firings of earlier sessions are the crashed
        ones, and an earlier session never closed means its host died."""
        with self._transaction():
            row = self._run(self.SQL.last_session, self._scope).fetchone()
            self.previous_session_died = row is not None and row[0] is None
            self.first_session = row is None
            got = self._run(self.SESSION_INSERT, self._session_values(self.text(note) or ""))
            self.session = int(got.fetchone()[0])
        if self._marks is not None:  # what a killed host marked and never shipped
            left = [] if self.first_session else self._marks.left_over()
            if left:  # (a first session's marks are a deleted trail's: not ours)
                with self._transaction():
                    self._ship_marks(left)
            self._marks.shipped(0)
        return self.session

    def end_session(self) -> None:
        with self._lock:
            self.flush()
            with self._transaction():
                self._run(self.SQL.close_session, (time.time(), self.session))

    def record_batch(self, events: Iterable[EventRow], firings: Sequence[PendingFiring],
                     position: Position | None = None, journal_seq: int = 0) -> list[int]:
        """Commit events and their pending firings in one transaction, with the journal
        position (and journal number) they were read up to; returns the firings' ids."""
        now, text, head = time.time(), self.text, (*self._scope, self.session)
        if text is _same:  # (a call per value saved where text is stored as it is)
            ev_rows = [(*head, seq, event.name, event.type, event.job, event.extra,
                        job_data if job_data is None or isinstance(job_data, str)
                        else json.dumps(job_data), now) for seq, event, job_data in events]
        else:
            ev_rows = [(*head, seq, event.name, event.type, event.job, text(event.extra),
                        text(job_data if job_data is None or isinstance(job_data, str)
                             else json.dumps(job_data)), now) for seq, event, job_data in events]
        fi_rows = [(*head, f.event_seq, f.ordinal, text(f.event.format()), f.event.name,
                    f.event.type, f.event.job, text(f.event.extra), f.job, text(f.callback),
                    text(f.directory), text(f.trigger), f.language, text(f.code), now)
                   for f in firings]
        return self._write_batch(ev_rows, fi_rows, position, journal_seq)

    def _write_batch(self, ev_rows: list[tuple[Any, ...]], fi_rows: list[tuple[Any, ...]],
                     position: Position | None, journal_seq: int) -> list[int]:
        """Commit a batch's rows (of `SQL.insert_events`, `SQL.insert_firing`) with the
        marks and outcomes waiting, in one transaction; the firings' ids."""
        with self._lock:
            with self._transaction():
                written = self._write_completions()
                if ev_rows:
                    self._insert_events(ev_rows)
                ids = self._insert_firings(fi_rows) if fi_rows else list
                if position is not None:
                    self._run(self.POSITION_PUT,
                              (*self._scope, position.segment, position.offset, journal_seq))
            self._written(written)
            return ids()

    def start(self, firing_id: int, started_at: float) -> int:
        """Count a run's attempt, durably before it starts (a run that kills the host is
        then known on restart); returns the attempts so far, this one included."""
        if self._marks is not None:
            return self._marks.start(firing_id, started_at)
        with self._lock:
            with self._transaction():
                # Outcomes buffered so far ride along: a finished run is not taken for one
                # the host died in.
                written = self._write_completions()
                row = self._run(self.SQL.start, (started_at, firing_id)).fetchone()
            self._written(written)
        return int(row[0]) if row else 0

    def complete(self, firing_id: int, status: str, *, exit_code: int | None = None,
                 output: str = "", error: str | None = None, started_at: float | None = None,
                 finished_at: float | None = None, duration: float | None = None) -> None:
        """Buffer a firing's outcome; written at the next `flush` (or batch)."""
        row = (status, exit_code, self.text(excerpt(output)), self.text(error), started_at,
               finished_at, duration, firing_id)
        if self._marks is not None:
            self._marks.forget(firing_id)
        with self._buffer_lock:
            self._buffer.append(row)

    def flush(self) -> None:
        """Commit buffered completions; on failure they stay buffered for the next try."""
        with self._lock:
            if not self._waiting():
                return
            with self._transaction():
                written = self._write_completions()
            self._written(written)

    def _waiting(self) -> bool:
        """Whether anything waits for `flush`."""
        return bool(self._buffer) or (self._marks is not None and bool(self._marks.unshipped()))

    def _outcomes(self) -> list[tuple[Any, ...]]:
        with self._buffer_lock:
            return self._buffer[:]

    def _write_completions(self) -> int:
        """Write the run marks, then the buffered outcomes (in the caller's transaction);
        how many outcomes were taken."""
        if self._marks is not None:
            marks = self._marks.take()
            if marks:
                self._ship_marks(marks)
        outcomes = self._outcomes()
        if outcomes:
            self._write_outcomes(outcomes)
        return len(outcomes)

    def _written(self, count: int) -> None:
        """After the commit: the first `count` outcomes, and the marks taken, are in the
        trail."""
        with self._buffer_lock:
            del self._buffer[:count]
        if self._marks is not None:
            self._marks.sent()

    def journal_position(self) -> tuple[Position, int]:
        """Where the matched part of the journal ends, and the last journal number matched."""
        with self._reading():
            row = self._run(self.POSITION_GET, self._scope).fetchone()
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
            count, top = self._run(self.SQL.count_orphans,
                                   (*self._scope, self.session)).fetchone()
            if count:
                self._run(self.SQL.adopt_orphans, (self.session, *self._scope, self.session))
        return int(count), int(top or 0)

    def claimed(self, after: int, upto: int, limit: int | None = None) -> list[FiringRecord]:
        """This session's firings with `after < id <= upto`, oldest first, at most `limit`
        (after `adopt_orphans`: a page of the orphans, as they stand now)."""
        sql = self.SQL.claimed + ("" if limit is None else f" LIMIT {int(limit)}")
        with self._reading():
            rows = self._run(sql, (*self._scope, self.session, after, upto)).fetchall()
        found = [record(r) for r in rows]
        if self._marks is not None:
            self._marks.learn((r.id, r.attempts) for r in found)
        return found

    def release_writer(self) -> None:
        """Stop writing (after a flush) and let another writer in; reading keeps working."""
        with self._lock:
            if not self.readonly:
                self.flush()
                self.readonly = True
            self._close_marks()  # the next writer reads them
            self._marks = None
            self._release_writer_lock()

    def close(self) -> None:
        with self._lock:
            try:
                if not self.readonly:
                    self.flush()
            finally:
                self._release_writer_lock()
                self._disconnect()

    # -- reading ---------------------------------------------------------------------------

    def query(self, *, job: int | None = None, callback: str | None = None,
              status: str | Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, session: int | None = None,
              limit: int | None = None, newest_first: bool = False,
              after_id: int | None = None,
              ids: Sequence[int] | None = None) -> list[FiringRecord]:
        """Firings filtered by attached job, callback name, status(es), queue time, session,
        and id (`after_id` for a tail, `ids` to read given firings again)."""
        p = self.SQL.param
        where, args = [self.SQL.where], list(self._scope)
        statuses = None if status is None else [status] if isinstance(status, str) else status
        for test, value in (("job = ?", job), ("callback = ?", callback),
                            ("queued_at >= ?", since), ("queued_at < ?", until),
                            ("session = ?", session), ("id > ?", after_id)):
            if value is not None:
                where.append(test)
                args.append(value)
        for column, values in (("status", statuses), ("id", ids)):
            if values is not None:
                where.append(f"{column} IN ({','.join('?' * len(values))})" if values
                             else "1=0")  # an empty list matches nothing
                args.extend(values)
        sql = (f"SELECT {COLUMNS} FROM firings " + " AND ".join(where)).replace("?", p)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reading():
            rows = self._run(sql, args).fetchall()
        return [record(r) for r in rows]

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
        """`head`, over this trail (of one session when given), then `tail`."""
        p = self.SQL.param
        sql = f"{head} {self.SQL.where}" + ("" if session is None else f" AND session = {p}")
        args = [*self._scope] + ([] if session is None else [session])
        with self._reading():
            return self._run(sql + tail, args).fetchall()

    def global_callbacks(self) -> GlobalTable:
        """The trail's global callbacks (see `audit.globals`)."""
        return GlobalTable(self._global_runner())

    def _global_runner(self) -> SqlRunner:
        raise NotImplementedError

    def load_producers(self) -> producers.Checkpoint:
        """The service's producer checkpoint (`audit.producers`)."""
        with self._transaction():  # its tables are made with the trail's (`producers.schema`)
            return producers.load(_Statements(self._run), self.SQL.param, self._trail_name())

    def save_producers(self, rows: Sequence[producers.ProducerRow], position: Position,
                       keep: int) -> None:
        with self._transaction():
            producers.save(_Statements(self._run), rows, position, keep, self.SQL.param,
                           self._trail_name())

    def _trail_name(self) -> str | None:
        return str(self._scope[0]) if self._scope else None

    def sessions(self) -> list[SessionRow]:
        with self._reading():
            rows = self._run(self.SQL.sessions, self._scope).fetchall()
        return [(int(i), int(p), float(s), None if c is None else float(c), str(n))
                for i, p, s, c, n in rows]

