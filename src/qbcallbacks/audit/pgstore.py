"""The audit trail and the event journal in PostgreSQL, for sites that keep their state there.

Selected by a `postgresql://` URL wherever an audit database path is accepted (see
`audit.backends`). One database holds the trails of several services, one per supervisor:
every row carries its trail's name (`?trail=NAME` in the URL, `default` if none), and a writer
holds its trail's lease, a session-level advisory lock on its connection, for as long as it is
open. A second writer of the same trail fails at once with `AuditInUse`; writers of other
trails are not affected; readers never lock. A killed writer's connection closes and its lease
goes with it.

The interface and the durability rules are those of the SQLite store (`audit.store`), which
this class stands in for: pending firings are committed before they run, completions in
batches, and the journal position in the same transaction as a batch. The journal is a table;
with `synchronous = normal` its inserts commit without waiting for the server's disk (an
accepted event survives a killed host, as with the file journal), with `full` they wait.
PostgreSQL text cannot hold NUL characters: they are stored as U+FFFD.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from . import producers
from .journal import Position
from .records import FiringRecord, PendingFiring, excerpt
from .store import _COLUMNS, AuditError, AuditInUse, AuditStore, EventRow, _record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, pid INTEGER NOT NULL,
    host TEXT NOT NULL DEFAULT '', started_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, session BIGINT NOT NULL,
    seq BIGINT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, job BIGINT NOT NULL,
    extra TEXT, job_data TEXT, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS firings (
    id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL, session BIGINT NOT NULL,
    event_seq BIGINT NOT NULL, ordinal INTEGER NOT NULL, event TEXT NOT NULL,
    event_name TEXT NOT NULL, event_type TEXT NOT NULL, event_job BIGINT NOT NULL,
    event_extra TEXT, job BIGINT NOT NULL, callback TEXT NOT NULL, directory TEXT NOT NULL,
    trigger TEXT NOT NULL, language TEXT NOT NULL, code TEXT, status TEXT NOT NULL,
    exit_code INTEGER, output TEXT NOT NULL DEFAULT '', error TEXT,
    queued_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION, duration DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS firings_trail_job ON firings(trail, job);
CREATE INDEX IF NOT EXISTS firings_trail_status ON firings(trail, status);
CREATE INDEX IF NOT EXISTS firings_trail_session ON firings(trail, session);
CREATE INDEX IF NOT EXISTS events_trail_session ON events(trail, session, seq);
CREATE TABLE IF NOT EXISTS journal_position (
    trail TEXT PRIMARY KEY, segment BIGINT NOT NULL, pos BIGINT NOT NULL, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    trail TEXT NOT NULL, seq BIGINT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    job BIGINT NOT NULL, extra TEXT, job_json TEXT, key BIGINT, PRIMARY KEY (trail, seq));
CREATE TABLE IF NOT EXISTS journal_keys (
    trail TEXT PRIMARY KEY, last_key BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    trail TEXT PRIMARY KEY, holder TEXT NOT NULL, since DOUBLE PRECISION NOT NULL);
"""

DEFAULT_TRAIL = "default"



def split_url(url: str) -> tuple[str, str]:
    """The connection URL without our `trail` parameter, and the trail's name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    trail = next((v for k, v in query if k == "trail"), DEFAULT_TRAIL) or DEFAULT_TRAIL
    rest = urlencode([(k, v) for k, v in query if k != "trail"])
    return urlunsplit(parts._replace(query=rest)), trail


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _text(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "\ufffd")


def _close_quietly(current: list[psycopg.Connection[Any]]) -> None:
    """Close a store's connection when the store goes (a dispatcher that owned its trail lets
    go of writing but keeps it readable; the connection goes with the store, as a SQLite one
    would)."""
    for pg in current:
        with contextlib.suppress(Exception):
            pg.close()


def _connect(dsn: str, what: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise AuditError(f"cannot open the {what} {shown(dsn)}: "
                         f"{str(exc).strip().splitlines()[0] if str(exc) else exc}") from exc


def _lease_key(trail: str) -> str:
    return f"qbcallbacks trail {trail}"


class PgAuditStore(AuditStore):
    """One trail of a PostgreSQL audit database; thread-safe (one lock, one connection)."""

    def __init__(self, url: str, *, readonly: bool = False, busy_timeout: float = 5.0,
                 synchronous: Literal["normal", "full"] = "normal") -> None:
        self.url = url
        self.dsn, self.trail = split_url(url)
        self.path = Path(f"{urlsplit(self.dsn).path.strip('/') or 'postgres'}-{self.trail}")
        self.readonly = readonly
        self.synchronous = synchronous
        self._lock = threading.RLock()
        self._buffer: list[tuple[Any, ...]] = []
        self._lock_fd = -1
        self.session = 0
        self.previous_session_died = False
        self.first_session = True
        self._shut = False
        self._busy_timeout = busy_timeout
        self._pg = self._open()
        # The connection is closed when the store goes, before the garbage collector could
        # reach the connection on its own (psycopg warns about an open one it deletes).
        self._current: list[psycopg.Connection[Any]] = [self._pg]
        weakref.finalize(self, _close_quietly, self._current)

    def _open(self) -> psycopg.Connection[Any]:
        """Connect, and as a writer make the schema and take the trail's lease."""
        pg = _connect(self.dsn, "audit database")
        try:
            pg.execute(f"SET lock_timeout = {int(self._busy_timeout * 1000)}")
            if self.readonly:
                row = pg.execute("SELECT to_regclass('firings')").fetchone()
                if row is None or row[0] is None:
                    raise AuditError(f"no audit trail in {shown(self.dsn)}")
                pg.execute("SET default_transaction_read_only = on")
            else:
                with pg.transaction():
                    pg.execute("SELECT pg_advisory_xact_lock(hashtext('qbcallbacks schema'))")
                    pg.execute(_SCHEMA)
                self._take_lease(pg)
        except psycopg.Error as exc:
            pg.close()
            raise AuditError(f"cannot open the audit database {shown(self.dsn)}: {exc}"
                             ) from exc
        except AuditError:
            pg.close()
            raise
        return pg

    @contextlib.contextmanager
    def _using(self) -> Iterator[None]:
        """Hold the store's lock around a use of the connection, connecting again first if
        the server dropped it (a writer takes its lease again, or fails with `AuditInUse`);
        a database error becomes an `AuditError`, which the dispatcher retries."""
        with self._lock:
            if self._pg.closed and not self._shut:
                with contextlib.suppress(Exception):
                    self._pg.close()
                self._pg = self._current[0] = self._open()
            try:
                yield
            except psycopg.Error as exc:
                raise AuditError(f"the audit trail {self}: {exc}") from exc

    def __str__(self) -> str:
        return f"{shown(self.dsn)} (trail {self.trail})"

    def _take_lease(self, pg: psycopg.Connection[Any]) -> None:
        got = pg.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                               (_lease_key(self.trail),)).fetchone()
        if not got or not got[0]:
            row = pg.execute("SELECT holder FROM leases WHERE trail=%s",
                                   (self.trail,)).fetchone()
            holder = row[0] if row else "another process"
            raise AuditInUse(f"the audit trail {self.trail!r} in {shown(self.dsn)} is being "
                             f"written by {holder}; one writer per trail (read it with "
                             "`qbcallbacks history`)")
        pg.execute(
            "INSERT INTO leases(trail, holder, since) VALUES (%s, %s, %s) ON CONFLICT (trail) "
            "DO UPDATE SET holder=EXCLUDED.holder, since=EXCLUDED.since",
            (self.trail, f"process {os.getpid()} on host {socket.gethostname()}", time.time()))
        self._lock_fd = 1  # the lease is held by this connection

    def _release_writer_lock(self) -> None:
        if self._lock_fd >= 0 and not self._pg.closed:
            # Closing the connection drops the lease anyway.
            with contextlib.suppress(psycopg.Error):
                self._pg.execute("SELECT pg_advisory_unlock(hashtext(%s))",
                                 (_lease_key(self.trail),))
        self._lock_fd = -1

    # -- writing ---------------------------------------------------------------------------

    def begin_session(self, note: str = "") -> int:
        with self._using():
            row = self._pg.execute("SELECT closed_at FROM sessions WHERE trail=%s ORDER BY id "
                                   "DESC LIMIT 1", (self.trail,)).fetchone()
            self.previous_session_died = row is not None and row[0] is None
            self.first_session = row is None
            got = self._pg.execute(
                "INSERT INTO sessions(trail, pid, host, started_at, note) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (self.trail, os.getpid(), socket.gethostname(), time.time(), _text(note)),
            ).fetchone()
            self.session = int(got[0]) if got else 0
        return self.session

    def end_session(self) -> None:
        with self._using():
            self.flush()
            self._pg.execute("UPDATE sessions SET closed_at=%s WHERE id=%s",
                             (time.time(), self.session))

    def load_producers(self) -> producers.Checkpoint:
        """The service's producer checkpoint (`audit.producers`)."""
        with self._using(), self._pg.transaction():
            for sql in producers.schema(trail_column=True):
                self._pg.execute(sql)
            return producers.load(self._pg, "%s", self.trail)

    def save_producers(self, rows: Sequence[producers.ProducerRow], position: Position,
                       keep: int) -> None:
        with self._using(), self._pg.transaction():
            producers.save(self._pg, rows, position, keep, "%s", self.trail)

    def record_batch(self, events: Iterable[EventRow], firings: Sequence[PendingFiring],
                     position: Position | None = None, journal_seq: int = 0) -> list[int]:
        now = time.time()
        ev_rows = [(self.trail, self.session, seq, event.name, event.type, event.job,
                    _text(event.extra),
                    _text(job_data if job_data is None or isinstance(job_data, str)
                          else json.dumps(job_data)), now) for seq, event, job_data in events]
        with self._using():
            try:
                with self._pg.transaction():
                    written = self._write_completions()
                    with self._pg.cursor() as cur:
                        if ev_rows:
                            cur.executemany(
                                "INSERT INTO events(trail, session, seq, name, type, job, "
                                "extra, job_data, at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                                ev_rows)
                        ids = []
                        for f in firings:
                            cur.execute(
                                "INSERT INTO firings(trail, session, event_seq, ordinal, event, "
                                "event_name, event_type, event_job, event_extra, job, callback,"
                                " directory, trigger, language, code, status, queued_at) VALUES"
                                " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,'pending',%s) "
                                "RETURNING id",
                                (self.trail, self.session, f.event_seq, f.ordinal,
                                 _text(f.event.format()), f.event.name, f.event.type,
                                 f.event.job, _text(f.event.extra), f.job, _text(f.callback),
                                 _text(f.directory), _text(f.trigger), f.language,
                                 _text(f.code), now))
                            got = cur.fetchone()
                            ids.append(int(got[0]) if got else 0)
                        if position is not None:
                            cur.execute(
                                "INSERT INTO journal_position(trail, segment, pos, seq) VALUES "
                                "(%s,%s,%s,%s) ON CONFLICT (trail) DO UPDATE SET "
                                "segment=EXCLUDED.segment, pos=EXCLUDED.pos, "
                                "seq=GREATEST(journal_position.seq, EXCLUDED.seq)",
                                (self.trail, position.segment, position.offset, journal_seq))
            except psycopg.Error as exc:
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
            del self._buffer[:written]
        return ids

    def start(self, firing_id: int, started_at: float) -> int:
        with self._using():
            try:
                with self._pg.transaction():
                    written = self._write_completions()
                    row = self._pg.execute(
                        "UPDATE firings SET attempts=attempts+1, started_at=%s WHERE id=%s "
                        "RETURNING attempts", (started_at, firing_id)).fetchone()
            except psycopg.Error as exc:
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
            del self._buffer[:written]
        return int(row[0]) if row else 0

    def complete(self, firing_id: int, status: str, *, exit_code: int | None = None,
                 output: str = "", error: str | None = None, started_at: float | None = None,
                 finished_at: float | None = None, duration: float | None = None) -> None:
        row = (status, exit_code, _text(excerpt(output)), _text(error), started_at,
               finished_at, duration, firing_id)
        with self._lock:
            self._buffer.append(row)

    def flush(self) -> None:
        with self._using():
            if not self._buffer:
                return
            try:
                with self._pg.transaction():
                    written = self._write_completions()
            except psycopg.Error as exc:
                raise AuditError(f"cannot write the audit trail: {exc}") from exc
            del self._buffer[:written]

    def _write_completions(self) -> int:
        n = len(self._buffer)
        if n:
            with self._pg.cursor() as cur:
                cur.executemany(
                    "UPDATE firings SET status=%s, exit_code=%s, output=%s, error=%s, "
                    "started_at=COALESCE(started_at, %s), finished_at=%s, duration=%s, "
                    "attempts=GREATEST(attempts, 1) WHERE id=%s", self._buffer[:n])
        return n

    def _rollback(self) -> None:
        pass  # `transaction()` rolls back by itself

    def journal_position(self) -> tuple[Position, int]:
        with self._using():
            row = self._pg.execute("SELECT segment, pos, seq FROM journal_position "
                                   "WHERE trail=%s", (self.trail,)).fetchone()
        if row is None:
            return Position(1, 0), 0
        return Position(int(row[0]), int(row[1])), int(row[2])

    def adopt_orphans(self) -> tuple[int, int]:
        with self._using(), self._pg.transaction():
            row = self._pg.execute(
                "SELECT COUNT(*), MAX(id) FROM firings WHERE trail=%s AND status='pending' "
                "AND session != %s", (self.trail, self.session)).fetchone()
            count, top = (int(row[0]), int(row[1] or 0)) if row else (0, 0)
            if count:
                self._pg.execute("UPDATE firings SET session=%s WHERE trail=%s AND "
                                 "status='pending' AND session != %s",
                                 (self.session, self.trail, self.session))
        return count, top

    def claimed(self, after: int, upto: int, limit: int | None = None) -> list[FiringRecord]:
        sql = (f"SELECT {_COLUMNS} FROM firings WHERE trail=%s AND session=%s AND id > %s "
               "AND id <= %s ORDER BY id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._using():
            rows = self._pg.execute(sql, (self.trail, self.session, after, upto)).fetchall()
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            try:
                if not self.readonly and not self._pg.closed:
                    self.flush()
            finally:
                self._shut = True
                self._release_writer_lock()
                self._pg.close()

    # -- reading ---------------------------------------------------------------------------

    def query(self, *, job: int | None = None, callback: str | None = None,
              status: str | Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, session: int | None = None,
              limit: int | None = None, newest_first: bool = False,
              after_id: int | None = None, ids: Sequence[int] | None = None,
              ) -> list[FiringRecord]:
        where: list[str] = ["trail = %s"]
        args: list[Any] = [self.trail]
        for column, value in (("job", job), ("callback", callback), ("session", session)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append("status = ANY(%s)")
            args.append(statuses)
        if since is not None:
            where.append("queued_at >= %s")
            args.append(since)
        if until is not None:
            where.append("queued_at < %s")
            args.append(until)
        if after_id is not None:
            where.append("id > %s")
            args.append(after_id)
        if ids is not None:
            where.append("id = ANY(%s)")
            args.append(list(ids))
        sql = f"SELECT {_COLUMNS} FROM firings WHERE {' AND '.join(where)}"
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._using():
            rows = self._pg.execute(sql, args).fetchall()
        return [_record(r) for r in rows]

    # `events` and `counts` are the SQLite store's: they read through this `_select`.

    def _select(self, head: str, session: int | None, tail: str) -> list[Any]:
        args: list[Any] = [self.trail] + ([] if session is None else [session])
        sql = head + " WHERE trail = %s" + ("" if session is None else " AND session = %s")
        with self._using():
            return self._pg.execute(sql + tail, args).fetchall()

    def sessions(self) -> list[tuple[int, int, float, float | None, str]]:
        with self._using():
            rows = self._pg.execute("SELECT id, pid, started_at, closed_at, note FROM sessions "
                                    "WHERE trail=%s ORDER BY id", (self.trail,)).fetchall()
        return [tuple(r) for r in rows]
