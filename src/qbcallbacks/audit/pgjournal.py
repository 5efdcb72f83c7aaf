"""The event journal of a PostgreSQL trail (`audit.pgstore`): one row per event, the
highest idempotency key in a row of its own, so that trimming never loses it.

`Position(1, seq)` is the place just after event `seq`. Appends use their own connection, so
they never wait behind the trail's transactions; with `fsync=False` they commit without waiting
for the server's disk (`synchronous_commit = off`: an accepted event survives a killed host),
with `fsync=True` they wait. A connection the server dropped is made again at the next append.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg

from ..model.events import Event
from .journal import JournalEntry, JournalError, Position
from .pgstore import PgAuditStore, _connect, _text
from .store import AuditError


class PgJournal:
    """The event journal of one trail, as rows; `Position(1, seq)` is the place after `seq`.

    Its own connection, so appends never wait behind the trail's transactions."""

    def __init__(self, store: PgAuditStore, *, fsync: bool = False, chunk: int = 1000) -> None:
        self.trail = store.trail
        self.directory = store.path
        self.fsync = fsync
        self.chunk = chunk
        self._lock = threading.Lock()
        self._dsn = store.dsn
        self._pg = self._connection()
        try:
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
        """The connection, made again if the server dropped it (under `_lock`)."""
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
               key: int | None = None) -> tuple[int, Position]:
        """Write one event (with the caller's idempotency `key`, if any, recorded in the same
        statement); returns its number and the position after it."""
        insert = ("INSERT INTO journal(trail, seq, name, type, job, extra, job_json, key) "
                  "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)")
        with self._lock:
            seq = self._next_seq
            values = (self.trail, seq, event.name, event.type, event.job, _text(event.extra),
                      _text(job_json), key)
            try:
                if key is None:
                    self._live().execute(insert, values)
                else:
                    self._live().execute(
                        f"WITH added AS ({insert}) INSERT INTO journal_keys(trail, last_key) "
                        "VALUES (%s, %s) ON CONFLICT (trail) DO UPDATE SET "
                        "last_key=GREATEST(journal_keys.last_key, EXCLUDED.last_key)",
                        (*values, self.trail, key))
            except psycopg.Error as exc:
                raise JournalError(f"cannot write the event journal: {exc}") from exc
            self._next_seq += 1
            if key is not None and key > self._last_key:
                self._last_key = key
        return seq, Position(1, seq)

    def close(self) -> None:
        with self._lock:
            self._pg.close()

    def segments(self) -> list[int]:
        return [1]

    def read_from(self, start: Position) -> Iterator[JournalEntry]:
        after = start.offset
        reader = _connect(self._dsn, "event journal")
        try:
            while True:
                rows = reader.execute(
                    "SELECT seq, name, type, job, extra, job_json FROM journal WHERE trail=%s "
                    "AND seq > %s ORDER BY seq LIMIT %s", (self.trail, after, self.chunk),
                ).fetchall()
                if not rows:
                    return
                for seq, name, typ, job, extra, job_json in rows:
                    after = int(seq)
                    yield JournalEntry(after, Event(name=name, type=typ, job=job, extra=extra),
                                       job_json, Position(1, after))
        finally:
            reader.close()

    def trim(self, consumed: Position) -> None:
        with self._lock, contextlib.suppress(psycopg.Error, JournalError):  # trimmed later
            self._live().execute("DELETE FROM journal WHERE trail=%s AND seq <= %s",
                             (self.trail, consumed.offset))

    def discard(self) -> None:
        with self._lock:
            try:
                pg = self._live()
                with pg.transaction():
                    pg.execute("DELETE FROM journal WHERE trail=%s", (self.trail,))
                    pg.execute("DELETE FROM journal_keys WHERE trail=%s", (self.trail,))
            except psycopg.Error as exc:
                raise JournalError(f"cannot reset the event journal: {exc}") from exc
            self._last_key = 0

    def ensure_after(self, seq: int) -> None:
        with self._lock:
            self._next_seq = max(self._next_seq, seq + 1)
