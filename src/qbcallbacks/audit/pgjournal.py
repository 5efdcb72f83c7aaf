"""The event journal of a PostgreSQL trail kept in its database (`?journal=table`): one row
per event, the highest idempotency key in a row of its own, so that trimming never loses it.

`Position(n, seq)` is the place just after event `seq`, `n` counting blocks of `TRIM_EVERY`
events: the recorder trims the journal whenever a batch ends in a new block. Appends use their
own connection, so they never wait behind the trail's transactions; appends from several
threads at once share a commit (group commit). With `fsync=False` they commit without waiting
for the server's disk (`synchronous_commit = off`: an accepted event survives a killed
service), with `fsync=True` they wait. A connection the server dropped is made again at the
next append."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg

from ..model.events import Event
from .journal import JournalEntry, JournalError, JournalKey, Position
from .pgstore import PgAuditStore, _connect, _text
from .store import AuditError

_GROUP_INSERT = """
WITH added AS (
    INSERT INTO journal(trail, seq, name, type, job, extra, job_json, key, pkey)
    SELECT %b, * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::text[],
                             %b::text[], %b::bigint[], %b::text[])
    RETURNING key)
INSERT INTO journal_keys(trail, last_key)
SELECT %b, MAX(key) FROM added HAVING MAX(key) IS NOT NULL
ON CONFLICT (trail) DO UPDATE SET last_key = GREATEST(journal_keys.last_key, EXCLUDED.last_key)
"""


#: Events per block: the unit the journal is trimmed by.
TRIM_EVERY = 4096


def place(seq: int) -> Position:
    """The position just after event `seq`."""
    return Position(1 + seq // TRIM_EVERY, seq)


class _Group:
    """Appends that share one commit: their rows, and how the commit went."""

    __slots__ = ("done", "error", "first", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.done = False
        self.first = 0
        self.error: str | None = None


class PgJournal:
    """The event journal of one trail, as rows; `place(seq)` is the position after `seq`.

    Its own connection, so appends never wait behind the trail's transactions."""

    def __init__(self, store: PgAuditStore, *, fsync: bool = False, chunk: int = 1000) -> None:
        self.trail = store.trail
        self.directory = store.path
        self.fsync = fsync
        self.chunk = chunk
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one commit on the wire at a time
        self._group = _Group()
        self._dsn = store.dsn
        self._pg = self._connection()
        self.problem: str | None = None
        self.problem_since: float | None = None
        self.keep_from: Position | None = None
        self.key_end = Position(0, 0)
        try:
            # A list key (the service's producer identity) is kept as JSON text beside it.
            self._pg.execute("ALTER TABLE journal ADD COLUMN IF NOT EXISTS pkey TEXT")
            row = self._pg.execute("SELECT MAX(seq) FROM journal WHERE trail=%s",
                                   (self.trail,)).fetchone()
            key = self._pg.execute("SELECT last_key FROM journal_keys WHERE trail=%s",
                                   (self.trail,)).fetchone()
        except psycopg.Error as exc:
            self._pg.close()
            raise JournalError(f"cannot open the event journal: {exc}") from exc
        self._next_seq = (int(row[0]) if row and row[0] is not None else 0) + 1
        self._last_key = int(key[0]) if key else 0

    def _connection(self) -> psycopg.Connection[Any]:
        try:
            pg = _connect(self._dsn, "event journal")
        except AuditError as exc:
            raise JournalError(str(exc)) from exc
        if not self.fsync:
            with contextlib.suppress(psycopg.Error):
                pg.execute("SET synchronous_commit = off")
        return pg

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, made again if the server dropped it (under `_commit_lock`)."""
        if self._pg.closed:
            with contextlib.suppress(Exception):
                self._pg.close()
            self._pg = self._connection()
        return self._pg

    @property
    def last_key(self) -> int:
        """The highest idempotency key journalled (0: none), across restarts and trims."""
        return self._last_key

    def append(self, event: Event, job_json: str | None,
               key: JournalKey = None) -> tuple[int, Position]:
        """Write one event (with the caller's `key`, if any: an idempotency number, or a list
        kept as JSON text); returns its number and the position after it, once the event is
        committed.

        Group commit: the appenders that arrive while a commit is under way wait for it, and
        the first of them then commits all of theirs in one statement and one round trip.
        Events are numbered at their commit, so a failed one leaves no gap."""
        with self._lock:
            group = self._group
            index = len(group.rows)
            group.rows.append((event.name, event.type, event.job, _text(event.extra),
                               _text(job_json), key if isinstance(key, int) else None,
                               json.dumps(key) if isinstance(key, list) else None))
        with self._commit_lock:
            if not group.done:
                with self._lock:
                    self._group = _Group()  # later appenders gather for the next commit
                self._commit(group)
        if group.error is not None:
            raise JournalError(f"cannot write the event journal: {group.error}")
        seq = group.first + index
        if key is not None:
            with self._lock:
                self.key_end = max(self.key_end, place(seq))
        return seq, place(seq)

    def _commit(self, group: _Group) -> None:
        """One statement for the whole group: all of it is journalled, or none (under
        `_commit_lock`)."""
        first = self._next_seq
        columns = [list(c) for c in zip(*group.rows, strict=True)]
        seqs = list(range(first, first + len(group.rows)))
        try:
            self._live().execute(_GROUP_INSERT, (self.trail, seqs, *columns, self.trail))
        except (psycopg.Error, JournalError) as exc:
            group.error = str(exc).strip() or type(exc).__name__
        else:
            group.first = first
            self._next_seq = first + len(seqs)
            keys = [k for k in columns[-2] if k is not None]
            self._last_key = max([self._last_key, *keys])
        group.done = True

    def close(self) -> None:
        with self._commit_lock:
            self._pg.close()

    def segments(self) -> list[int]:
        return [1]

    def read_from(self, start: Position) -> Iterator[JournalEntry]:
        after = start.offset
        reader = _connect(self._dsn, "event journal")
        try:
            while True:
                rows = reader.execute(
                    "SELECT seq, name, type, job, extra, job_json, key, pkey FROM journal "
                    "WHERE trail=%s AND seq > %s ORDER BY seq LIMIT %s",
                    (self.trail, after, self.chunk),
                ).fetchall()
                if not rows:
                    return
                for seq, name, typ, job, extra, job_json, key, pkey in rows:
                    after = int(seq)
                    yield JournalEntry(after, Event(name=name, type=typ, job=job, extra=extra),
                                       job_json, place(after),
                                       json.loads(pkey) if pkey else key)
        finally:
            reader.close()

    def trim(self, consumed: Position) -> None:
        with self._commit_lock, contextlib.suppress(psycopg.Error, JournalError):  # later
            upto = consumed.offset if self.keep_from is None else min(
                consumed.offset, self.keep_from.offset)
            self._live().execute("DELETE FROM journal WHERE trail=%s AND seq <= %s",
                                 (self.trail, upto))

    def discard(self) -> None:
        with self._commit_lock:
            try:
                pg = self._live()
                with pg.transaction():
                    pg.execute("DELETE FROM journal WHERE trail=%s", (self.trail,))
                    pg.execute("DELETE FROM journal_keys WHERE trail=%s", (self.trail,))
            except psycopg.Error as exc:
                raise JournalError(f"cannot reset the event journal: {exc}") from exc
            self._last_key = 0

    def ensure_after(self, seq: int) -> None:
        with self._commit_lock:
            self._next_seq = max(self._next_seq, seq + 1)
