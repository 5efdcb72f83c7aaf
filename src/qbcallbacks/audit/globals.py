"""The global callbacks' table of the audit trail, for both backends.

One table, `global_callbacks`, keeps every global callback submitted to a trail: the ones in
force (`active`), the ones removed (`removed`, kept for `history`) and the submissions that
were refused (`refused`, with the reason: a refusal is audited). A dispatcher reads the
active ones when it starts, so they survive a restart, and writes the last instant each fired
on, so a restart does not fire that instant again. The SQL is written once, with `?`
placeholders; a backend hands it a runner that speaks its own dialect.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

from ..model._base import Frozen
from ..model.globals import GlobalCallback

Dialect = Literal["sqlite", "postgres"]
GlobalState = Literal["active", "removed", "refused"]

_COLUMNS = ("trail TEXT NOT NULL DEFAULT '', trigger TEXT NOT NULL, language TEXT NOT NULL, "
            "code TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, submitted_at {real} NOT "
            "NULL, removed_at {real}, last_instant {real}")
SCHEMA: dict[Dialect, str] = {
    "sqlite": "CREATE TABLE IF NOT EXISTS global_callbacks (id INTEGER PRIMARY KEY "
              f"AUTOINCREMENT, {_COLUMNS.format(real='REAL')})",
    "postgres": "CREATE TABLE IF NOT EXISTS global_callbacks (id BIGSERIAL PRIMARY KEY, "
                f"{_COLUMNS.format(real='DOUBLE PRECISION')})",
}
_FIELDS = "id, trigger, language, code, state, reason, submitted_at, removed_at, last_instant"


class SqlRunner(Protocol):
    """What a backend gives this module: its dialect, its trail, and three ways to run SQL
    written with `?` placeholders (each call one transaction)."""

    dialect: Dialect
    trail: str

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def insert(self, sql: str, args: Sequence[Any]) -> int: ...

    def write(self, sql: str, args: Sequence[Any]) -> int: ...


class SqliteRunner:
    """How this module's SQL runs on a SQLite trail (one trail per file): under the store's
    lock, writes in the store's transactions."""

    dialect: Dialect = "sqlite"
    trail = ""

    def __init__(self, lock: AbstractContextManager[Any], db: sqlite3.Connection,
                 transaction: Callable[[], AbstractContextManager[None]]) -> None:
        self._lock, self._db, self._transaction = lock, db, transaction

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def insert(self, sql: str, args: Sequence[Any]) -> int:
        with self._transaction():
            return int(self._db.execute(sql, args).lastrowid or 0)

    def write(self, sql: str, args: Sequence[Any]) -> int:
        with self._transaction():
            return int(self._db.execute(sql, args).rowcount)


class PgRunner:
    """How this module's SQL runs on a PostgreSQL trail: `%s` placeholders, the new id
    returned by the insert itself, each call in the store's `using` (which reconnects)."""

    dialect: Dialect = "postgres"

    def __init__(self, using: Callable[[], AbstractContextManager[None]],
                 connection: Callable[[], Any], trail: str) -> None:
        self._using, self._pg, self.trail = using, connection, trail

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._using():
            return list(self._pg().execute(sql.replace("?", "%s"), args).fetchall())

    def insert(self, sql: str, args: Sequence[Any]) -> int:
        with self._using(), self._pg().transaction():
            row = self._pg().execute(sql.replace("?", "%s") + " RETURNING id", args).fetchone()
        return int(row[0]) if row else 0

    def write(self, sql: str, args: Sequence[Any]) -> int:
        with self._using(), self._pg().transaction():
            return int(self._pg().execute(sql.replace("?", "%s"), args).rowcount)


class GlobalRow(Frozen):
    """One row of the table, whatever its state: what `history --globals` lists."""

    id: int
    trigger: str
    #: As submitted: a refused submission may name a language that does not exist.
    language: str
    code: str
    state: GlobalState
    reason: str | None = None
    submitted_at: float
    removed_at: float | None = None
    last_instant: float | None = None


class GlobalTable:
    """The global callbacks of one trail."""

    def __init__(self, runner: SqlRunner) -> None:
        self._run = runner

    def _add(self, trigger: str, language: str, code: str, state: GlobalState,
             reason: str | None) -> int:
        return self._run.insert(
            "INSERT INTO global_callbacks(trail, trigger, language, code, state, reason, "
            "submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._run.trail, trigger, language, code, state, reason, time.time()))

    def add(self, trigger: str, language: str, code: str) -> GlobalCallback:
        """Keep a new global callback in force; returns it with its id."""
        new_id = self._add(trigger, language, code, "active", None)
        [found] = [g for g in self.active() if g.id == new_id]
        return found

    def refuse(self, trigger: str, language: str, code: str, reason: str) -> int:
        """Keep the record of a refused submission, with the reason."""
        return self._add(trigger, language, code, "refused", reason)

    def remove(self, callback_id: int) -> bool:
        """Take a global callback out of force; False when no active one has that id."""
        return self._run.write(
            "UPDATE global_callbacks SET state = 'removed', removed_at = ? "
            "WHERE id = ? AND trail = ? AND state = 'active'",
            (time.time(), callback_id, self._run.trail)) > 0

    def fired(self, callback_id: int, instant: float) -> None:
        """Remember the latest instant a global callback fired on."""
        self._run.write("UPDATE global_callbacks SET last_instant = ? WHERE id = ? AND trail = ?",
                        (instant, callback_id, self._run.trail))

    def rows(self) -> list[GlobalRow]:
        """Every row of this trail, by id (none when the trail predates the table)."""
        try:
            found = self._run.rows(f"SELECT {_FIELDS} FROM global_callbacks WHERE trail = ? "
                                   "ORDER BY id", (self._run.trail,))
        except Exception as exc:  # a trail written before global callbacks existed
            if "global_callbacks" in str(exc):
                return []
            raise
        names = _FIELDS.split(", ")
        return [GlobalRow.model_validate(dict(zip(names, row, strict=True))) for row in found]

    def active(self) -> list[GlobalCallback]:
        """The global callbacks in force."""
        keep = ("id", "trigger", "language", "code", "submitted_at", "last_instant")
        return [GlobalCallback.model_validate(r.model_dump(include=set(keep)))
                for r in self.rows() if r.state == "active"]
