"""Many rows in few statements, for the SQLite trail's batches.

The `sqlite3` module lets go of the interpreter lock around every step of a statement, and
`executemany` steps once per row. While another thread wants the lock (an `emit` loop, a run),
each step can cost the writer a whole switch interval before it gets the lock back: a batch of
500 rows took ten times as long as alone. A statement of many rows (`VALUES (...), (...)`) is
one step, so a batch goes in a handful of steps. Chunks are powers of two, so that a few
statement texts serve every batch size (SQLite keeps them prepared).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

#: Rows per statement at most (SQLite allows 32,766 parameters; firings have 16 columns).
CHUNK = 256


@lru_cache(maxsize=64)
def statement(head: str, row: str, count: int, tail: str) -> str:
    """`head` then `VALUES` with `count` copies of the `row` template, then `tail`."""
    return f"{head} VALUES {','.join([row] * count)}{tail}"


def run_rows(db: sqlite3.Connection, head: str, row: str, rows: Sequence[Sequence[Any]],
             tail: str = "") -> None:
    """Run `head VALUES row, row, ... tail` over `rows`, in chunks of at most `CHUNK`."""
    done, total = 0, len(rows)
    while done < total:
        size = min(CHUNK, 1 << ((total - done).bit_length() - 1))
        db.execute(statement(head, row, size, tail),
                   [value for r in rows[done:done + size] for value in r])
        done += size


def placeholders(count: int, *, then: str = "") -> str:
    """A row template: `count` placeholders, then literal `then` values."""
    return "(" + ",".join("?" * count) + (f",{then}" if then else "") + ")"
