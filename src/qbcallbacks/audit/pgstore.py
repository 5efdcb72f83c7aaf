"""The audit trail and the event journal in PostgreSQL, for sites that keep their state there.

Selected by a `postgresql://` URL wherever an audit database path is accepted (see
`audit.backends`). One database holds the trails of several services, one per supervisor:
every row carries its trail's name (`?trail=NAME` in the URL, `default` if none), and a writer
holds its trail's lease, a session-level advisory lock on its connection, for as long as it is
open. A second writer of the same trail fails at once with `AuditInUse`; writers of other
trails are not affected; readers never lock. A killed writer's connection closes and its lease
goes with it.

The contract and the durability rules are those of every trail (`audit.store`); the SQL shared
with the SQLite trail is in `audit.sql`, and this module holds only what differs: the
connection (made again when the server drops it), the lease, rows scoped by trail name, ids
from sequences, and text without NUL characters (PostgreSQL cannot hold them: they are stored
as U+FFFD).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from .sql import Rows, SqlTrail, statements
from .store import AuditError, AuditInUse

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


class PgAuditStore(SqlTrail):
    """One trail of a PostgreSQL audit database (see `audit.store` for the contract)."""

    SQL = statements("%s", scoped=True)
    SESSION_INSERT = ("INSERT INTO sessions(trail, pid, host, started_at, note) "
                      "VALUES (%s, %s, %s, %s, %s) RETURNING id")
    POSITION_GET = "SELECT segment, pos, seq FROM journal_position WHERE trail = %s"
    POSITION_PUT = ("INSERT INTO journal_position(trail, segment, pos, seq) VALUES "
                    "(%s, %s, %s, %s) ON CONFLICT (trail) DO UPDATE SET "
                    "segment = EXCLUDED.segment, pos = EXCLUDED.pos, "
                    "seq = GREATEST(journal_position.seq, EXCLUDED.seq)")
    text = staticmethod(_text)

    def __init__(self, url: str | Path, *, readonly: bool = False, busy_timeout: float = 5.0,
                 synchronous: Literal["normal", "full"] = "normal") -> None:
        self.url = str(url)
        self.dsn, self.trail = split_url(self.url)
        self._setup(Path(f"{urlsplit(self.dsn).path.strip('/') or 'postgres'}-{self.trail}"),
                    readonly=readonly, scope=(self.trail,))
        self.synchronous = synchronous
        self._leased = False
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
    def _reading(self) -> Iterator[None]:
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._reading(), self._pg.transaction():  # rolled back by psycopg on any failure
            yield

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
        self._leased = True  # held by this connection

    def _release_writer_lock(self) -> None:
        if self._leased and not self._pg.closed:
            # Closing the connection drops the lease anyway.
            with contextlib.suppress(psycopg.Error):
                self._pg.execute("SELECT pg_advisory_unlock(hashtext(%s))",
                                 (_lease_key(self.trail),))
        self._leased = False

    def _disconnect(self) -> None:
        self._shut = True
        self._pg.close()

    def close(self) -> None:
        with self._lock:
            if self._pg.closed:
                self.readonly = True  # the server dropped us: nothing can be flushed through
            super().close()

    def _run(self, sql: str, args: Sequence[Any] = ()) -> Rows:
        return self._pg.execute(sql, args)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._pg.cursor() as cur:
            cur.executemany(sql, rows)

    def _insert_ids(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """One pipelined round trip for the whole batch, the ids in row order."""
        ids = []
        with self._pg.cursor() as cur:
            cur.executemany(sql, rows, returning=True)
            while True:
                ids.append(int(cur.fetchone()[0]))  # type: ignore[index]
                if not cur.nextset():
                    break
        return ids

    def _session_values(self, note: str) -> tuple[Any, ...]:
        return (self.trail, os.getpid(), socket.gethostname(), time.time(), note)
