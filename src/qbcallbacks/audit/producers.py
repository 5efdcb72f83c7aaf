"""The producers' state in the audit trail: for each event source of the service (a
supervisor, an adapter), its epochs and the `seq` and content hash of its latest events.

The journal line of an accepted event carries the same facts, so the state is durable from the
ack on; the table is a checkpoint of it with the journal position it covers. On a start the
service reads the checkpoint and then the journal after that position; the journal keeps every
segment from that position on (`Journal.keep_from`), so trimming never loses a producer's state.

The SQL is the same for SQLite and PostgreSQL but for the parameter marker; each store calls
`load` and `save` with its own connection inside its own lock and transaction. A checkpoint
can hold thousands of rows: they go in statements of many rows each (`VALUES (...), (...)`),
so the thread that writes it spends a few statements' worth of interpreter time, not a
statement per row, while the connection threads wait for the interpreter to answer events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from .journal import Position
from .sqlrows import statement

#: Rows per statement at most (4 or 5 parameters each: far below both backends' limits).
CHUNK = 256


class ProducerRow(NamedTuple):
    """One accepted event of one producer, as far as duplicates are judged."""

    producer: str
    epoch: int
    seq: int
    digest: str


class Checkpoint(NamedTuple):
    """What the table holds: the rows, and the journal position they cover."""

    rows: list[ProducerRow]
    position: Position | None


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What both the sqlite3 and psycopg connections offer."""

    def execute(self, sql: str, args: Sequence[Any] = ...) -> Any: ...


def schema(trail_column: bool) -> list[str]:
    """The tables (a PostgreSQL trail keys every row by its trail name)."""
    trail = "trail TEXT NOT NULL, " if trail_column else ""
    key = "trail, " if trail_column else ""
    return [
        f"CREATE TABLE IF NOT EXISTS producer_events ({trail}producer TEXT NOT NULL, "
        f"epoch BIGINT NOT NULL, seq BIGINT NOT NULL, digest TEXT NOT NULL, "
        f"PRIMARY KEY ({key}producer, epoch, seq))",
        f"CREATE TABLE IF NOT EXISTS producer_mark ({trail}segment BIGINT NOT NULL, "
        f"pos BIGINT NOT NULL{', PRIMARY KEY (trail)' if trail_column else ''})",
    ]


def load(db: Connection, mark: str = "?", trail: str | None = None) -> Checkpoint:
    """The checkpoint (no rows and no position on a trail that never had one)."""
    where, args = (f" WHERE trail={mark}", [trail]) if trail is not None else ("", [])
    rows = [ProducerRow(str(p), int(e), int(s), str(d)) for p, e, s, d in db.execute(
        f"SELECT producer, epoch, seq, digest FROM producer_events{where} "
        "ORDER BY producer, epoch, seq", args).fetchall()]
    found = db.execute(f"SELECT segment, pos FROM producer_mark{where}", args).fetchall()
    return Checkpoint(rows, Position(int(found[0][0]), int(found[0][1])) if found else None)


def save(db: Connection, rows: Sequence[ProducerRow], position: Position, keep: int,
         mark: str = "?", trail: str | None = None) -> None:
    """Add `rows`, keep only each producer's newest epoch and its `keep` newest seqs, and
    record the journal position the table now covers (inside the caller's transaction)."""
    m = mark
    tcol, tval, tand = ("trail, ", [trail], f"trail={m} AND ") if trail is not None else (
        "", [], "")
    tmark = f"{m}," if trail is not None else ""
    head = f"INSERT INTO producer_events({tcol}producer, epoch, seq, digest)"
    row = f"({tmark}{m},{m},{m},{m})"
    done, total = 0, len(rows)
    while done < total:  # a few statements of many rows: see the module
        size = min(CHUNK, 1 << ((total - done).bit_length() - 1))
        db.execute(statement(head, row, size, " ON CONFLICT DO NOTHING"),
                   [v for r in rows[done:done + size] for v in (*tval, *r)])
        done += size
    for name in sorted({r.producer for r in rows}):
        newest = max(r.epoch for r in rows if r.producer == name)
        db.execute(f"DELETE FROM producer_events WHERE {tand}producer={m} AND epoch<{m}",
                   [*tval, name, newest])
        db.execute(f"DELETE FROM producer_events WHERE {tand}producer={m} AND seq < ("
                   f"SELECT MIN(seq) FROM (SELECT seq FROM producer_events WHERE {tand}"
                   f"producer={m} ORDER BY seq DESC LIMIT {int(keep)}) AS newest)",
                   [*tval, name, *tval, name])
    db.execute(f"DELETE FROM producer_mark{' WHERE trail=' + m if trail is not None else ''}",
               tval)
    db.execute(f"INSERT INTO producer_mark({tcol}segment, pos) VALUES ({tmark}{m},{m})",
               [*tval, position.segment, position.offset])
