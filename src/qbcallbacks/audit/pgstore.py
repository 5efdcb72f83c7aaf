"""The audit trail and the event journal in PostgreSQL, for sites that keep their state there.

Selected by a `postgresql://` URL wherever an audit database path is accepted (see
`audit.backends`). One database holds the trails of several services, one per supervisor:
every row carries its trail's name (`?trail=NAME` in the URL, `default` if none), and a writer
holds its trail's lease, a session-level advisory lock on its connection, for as long as it is
open. A second writer of the same trail fails at once with `AuditInUse`; writers of other
trails are not affected; readers never lock. A killed writer's connection closes and its lease
goes with it.

The contract is every trail's (`audit.store`), the shared part `audit.sql`; here only what
differs: the connection (made again when the server drops it), the lease, rows scoped by
trail, batches as arrays, run marks (`audit.marks`), no NUL in text (stored as U+FFFD).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from . import pgbatch
from .globals import PgRunner
from .journal import Position
from .marks import Mark, RunMarks
from .pgschema import schema_present, schema_statements
from .sql import SqlTrail
from .statements import Rows, statements
from .store import AuditError, AuditInUse

_COMPLETE = """
UPDATE firings AS f SET status = u.status, exit_code = u.exit_code, output = u.output,
    error = u.error, started_at = COALESCE(f.started_at, u.started_at),
    finished_at = u.finished_at, duration = u.duration, attempts = GREATEST(f.attempts, 1)
FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::float8[], %b::float8[],
            %b::float8[], %b::bigint[])
    AS u(status, exit_code, output, error, started_at, finished_at, duration, id)
WHERE f.id = u.id"""
#: Run marks as absolute attempt numbers: shipping one twice changes nothing.
_MARKS = """
UPDATE firings AS f SET attempts = GREATEST(f.attempts, u.attempt), started_at = u.started_at
FROM unnest(%b::bigint[], %b::int[], %b::float8[]) AS u(id, attempt, started_at)
WHERE f.id = u.id"""

DEFAULT_TRAIL = "default"

log = logging.getLogger("qbcallbacks.audit")


#: Parameters of the URL that are ours, not the server's.
OUR_PARAMETERS = ("trail", "journal")


def split_url(url: str) -> tuple[str, str]:
    """The connection URL without our parameters, and the trail's name."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    trail = next((v for k, v in query if k == "trail"), DEFAULT_TRAIL) or DEFAULT_TRAIL
    rest = urlencode([(k, v) for k, v in query if k not in OUR_PARAMETERS])
    return urlunsplit(parts._replace(query=rest)), trail


def journal_option(url: str) -> str | None:
    """Where the URL asks for the event journal (`?journal=`): `table`, a directory, or
    None (the default place, see `audit.backends.open_journal`)."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return next((v for k, v in query if k == "journal" and v), None)


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
        self.journal_option = journal_option(self.url)
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
        self._marks = self._open_marks()

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
                if not schema_present(pg):
                    with pg.transaction():
                        pg.execute("SELECT pg_advisory_xact_lock(hashtext('qbcallbacks schema'))")
                        for sql in schema_statements():
                            pg.execute(sql)
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
        """Pipelined: the statements go out together and their answers come back together,
        one round trip where a result is read and one at the commit."""
        with self._reading(), self._pg.pipeline(), self._pg.transaction():  # rolled back by
            yield  # psycopg on any failure

    def __str__(self) -> str:
        return f"{shown(self.dsn)} (trail {self.trail})"

    def _take_lease(self, pg: psycopg.Connection[Any]) -> None:
        got = pg.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                         (f"qbcallbacks trail {self.trail}",)).fetchone()
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
                                 (f"qbcallbacks trail {self.trail}",))
        self._leased = False

    def _open_marks(self) -> RunMarks | None:
        """Run marks next to the local journal, for a writer whose journal is local and whose
        commits need not wait for a disk (`synchronous="full"` counts each run in the trail)."""
        if self.readonly or self.journal_option == "table" or self.synchronous == "full":
            return None
        return RunMarks(self.journal_dir() / "runs.marks")

    def journal_dir(self) -> Path:
        """Where this trail's local journal lives (see `audit.backends`)."""
        if self.journal_option and self.journal_option != "table":
            return Path(self.journal_option)
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        digest = hashlib.sha256(self.dsn.encode()).hexdigest()[:12]
        return Path(state) / "qbcallbacks" / "journals" / f"{self.path.name}-{digest}"

    def _disconnect(self) -> None:
        self._shut = True
        self._close_marks()
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

    # -- runs: marked locally, shipped with the next batch or flush ------------------------

    def begin_session(self, note: str = "") -> int:
        session = super().begin_session(note)
        if self._marks is not None:
            self._warn_if_taken_over()
        return session

    def _warn_if_taken_over(self) -> None:
        """A writer that died on another host left its unmatched events and last attempts in
        that host's local files: say so, since this host cannot read them."""
        if not self.previous_session_died:
            return
        with self._reading():
            row = self._pg.execute("SELECT host FROM sessions WHERE trail = %s AND id < %s "
                                   "ORDER BY id DESC LIMIT 1", (self.trail, self.session)
                                   ).fetchone()
        here = socket.gethostname()
        if row is not None and row[0] and row[0] != here:
            log.warning("the previous writer of the trail %s died on host %s: the events it "
                        "accepted and never matched, and its last runs' attempts, wait in "
                        "its local journal there (started there again, it finishes them); "
                        "`?journal=table` keeps them in the database instead", self, row[0])

    def _write_batch(self, ev_rows: list[tuple[Any, ...]], fi_rows: list[tuple[Any, ...]],
                     position: Position | None, journal_seq: int) -> list[int]:
        """One statement, hence one round trip (`audit.pgbatch`)."""
        with self._reading():
            marks = self._marks.take() if self._marks is not None else []
            outcomes = self._outcomes()
            sql, params = pgbatch.batch(
                (self.trail, self.session), marks, outcomes, [r[2:] for r in ev_rows],
                [r[2:-1] for r in fi_rows],
                None if position is None else (position.segment, position.offset, journal_seq),
                fi_rows[0][-1] if fi_rows else 0.0)
            ids = [int(fid) for (fid,) in self._pg.execute(sql, params).fetchall()]
            self._written(len(outcomes))
        return ids

    def flush(self) -> None:
        """As a batch with no rows of its own: one statement."""
        with self._lock:
            if self._waiting():
                self._write_batch([], [], None, 0)

    def _write_outcomes(self, outcomes: list[tuple[Any, ...]]) -> None:
        """In one statement: columns as arrays."""
        self._pg.execute(_COMPLETE, [list(c) for c in zip(*outcomes, strict=True)])

    def _ship_marks(self, marks: list[Mark]) -> None:
        latest = {fid: (attempt, started) for fid, attempt, started in sorted(marks)}
        self._pg.execute(_MARKS, ([*latest], [a for a, _ in latest.values()],
                                  [s for _, s in latest.values()]))

    def _global_runner(self) -> PgRunner:
        return PgRunner(self._reading, lambda: self._pg, self.trail)

    def _session_values(self, note: str) -> tuple[Any, ...]:
        return (self.trail, os.getpid(), socket.gethostname(), time.time(), note)
