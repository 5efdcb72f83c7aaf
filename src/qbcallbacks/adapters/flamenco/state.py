"""The adapter's durable memory (one SQLite file, `--state`): what it knows of every job and
task, the events it owes the engine, and the messages it could not read.

Events are raised from state, not from what a message claims: each job and task keeps its last
known Flamenco status and `updated` time, and a change is an event only when the status really
differs from the stored one. A message older than what is stored (a late delivery after a
reconciliation read newer state) changes nothing. The status change and the events it raises
are written in one transaction into an outbox, numbered with the line protocol's `seq`; the
outbox is emptied in order and each event marked handed on once taken. A crash between the two
hands the same events on again with the same `seq`, which the service acknowledges without
running them twice. A job's number is given the first time its UUID is seen and never reused
(`AUTOINCREMENT`); a deleted job keeps its row as a tombstone, so late news of it is ignored.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...errors import QbCallbacksError
from .messages import JOB_STATUS, TASK_BORN, TASK_STATUS, moment, work_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    flamenco TEXT,
    updated TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY,
    job INTEGER NOT NULL,
    work TEXT NOT NULL,
    flamenco TEXT NOT NULL,
    updated TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tasks_work ON tasks(job, work);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    line TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (digest TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""

#: Handed-on events kept in the outbox (for inspection); older ones are pruned.
KEEP_DELIVERED = 10_000

_T = TypeVar("_T")


class StateError(QbCallbacksError):
    """The adapter's state database cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the adapter could not read, acknowledged and kept aside."""

    id: int
    at: str
    topic: str
    payload: bytes
    reason: str


Line = dict[str, Any]


class Changes:
    """One transaction's view: apply what the Manager says, collect the events it raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.lines: list[Line] = []

    def _row(self, uuid: str) -> tuple[int, str, str | None, str, int] | None:
        row = self._db.execute("SELECT id, name, flamenco, updated, deleted FROM jobs "
                               "WHERE uuid=?", (uuid,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), row[2], str(row[3]),
                                         int(row[4]))

    def _job_object(self, number: int) -> dict[str, Any]:
        name, flamenco, deleted = self._db.execute(
            "SELECT name, flamenco, deleted FROM jobs WHERE id=?", (number,)).fetchone()
        state = "removed" if deleted else JOB_STATUS.get(flamenco or "", ("pending", None))[0]
        return {"id": number, "name": name, "status": state}

    def job(self, uuid: str, status: str | None, *, name: str | None = None,
            updated: str = "", silent: bool = False) -> int | None:
        """Record a job's status (None: not known yet); its number, None for a deleted job.
        A new job raises `submit`, a status that differs from the stored one its event."""
        row = self._row(uuid)
        if row is not None and row[4]:
            return None
        if row is None:
            cur = self._db.execute("INSERT INTO jobs(uuid) VALUES (?)", (uuid,))
            number, old, stored, new = int(cur.lastrowid or 0), None, "", True
        else:
            number, old, stored, new = row[0], row[2], row[3], False
            if stored and updated and moment(updated) < moment(stored):
                return number  # older than what is known: a late delivery
        if status is None:
            status = old
        self._db.execute("UPDATE jobs SET name=COALESCE(?, name), flamenco=?, updated=? "
                         "WHERE id=?", (name, status, max(updated, stored, key=moment),
                                        number))
        if silent:
            return number
        job = self._job_object(number)
        if new:
            self.lines.append({"event": "submit", "type": "job", "job": job, "extra": None})
        event = JOB_STATUS[status][1] if status is not None and status != old else None
        if event is not None:
            self.lines.append({"event": event, "type": "job", "job": job, "extra": None})
        return number

    def task(self, number: int, uuid: str, name: str, status: str, *, updated: str = "",
             silent: bool = False) -> None:
        """Record a task's status; a status that differs from the stored one (a task never
        seen counts as just created, `queued`) raises its work event."""
        row = self._db.execute("SELECT flamenco, updated FROM tasks WHERE uuid=?",
                               (uuid,)).fetchone()
        old, stored = (row[0], row[1]) if row is not None else (TASK_BORN, "")
        if stored and updated and moment(updated) < moment(stored):
            return
        work = work_name(name, uuid)
        self._db.execute(
            "INSERT INTO tasks(uuid, job, work, flamenco, updated) VALUES (?,?,?,?,?) "
            "ON CONFLICT(uuid) DO UPDATE SET work=excluded.work, flamenco=excluded.flamenco, "
            "updated=excluded.updated", (uuid, number, work, status,
                                         max(updated, stored, key=moment)))
        event = TASK_STATUS[status][1]
        if not silent and status != old and event is not None:
            self.lines.append({"event": event, "type": "work", "job": self._job_object(number),
                               "extra": work})

    def remove(self, uuid: str) -> None:
        """The job is gone: `removed` once, its tasks forgotten, its number never reused."""
        row = self._row(uuid)
        if row is None or row[4]:
            return
        self._db.execute("UPDATE jobs SET deleted=1 WHERE id=?", (row[0],))
        self._db.execute("DELETE FROM tasks WHERE job=?", (row[0],))
        self.lines.append({"event": "removed", "type": "job", "job": self._job_object(row[0]),
                           "extra": None})

    def live_jobs(self) -> list[str]:
        """The UUIDs of the jobs not deleted."""
        return [str(u) for (u,) in self._db.execute(
            "SELECT uuid FROM jobs WHERE deleted=0 ORDER BY id")]

    def number(self, uuid: str) -> int | None:
        row = self._row(uuid)
        return None if row is None or row[4] else row[0]


class AdapterState:
    """One SQLite file, one writer (the adapter's message loop); lookups from any thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open the adapter state {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, what: Callable[[], _T]) -> _T:
        with self._lock:
            try:
                return what()
            except sqlite3.Error as exc:
                raise StateError(f"the adapter state {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- changing ---------------------------------------------------------------------------

    def apply(self, steps: Callable[[Changes], None]) -> list[tuple[int, Line]]:
        """Run `steps` in one transaction; the events it raised, numbered and in the outbox."""
        def run() -> list[tuple[int, Line]]:
            with self._transaction():
                changes = Changes(self._db)
                steps(changes)
                got = self._db.execute("SELECT seq FROM counter WHERE id=1").fetchone()
                first = (int(got[0]) if got else 0) + 1
                numbered = list(enumerate(changes.lines, start=first))
                self._db.executemany("INSERT INTO outbox(seq, line) VALUES (?, ?)",
                                     [(seq, json.dumps(line)) for seq, line in numbered])
                if numbered:
                    self._set_seq(first + len(numbered) - 1)
            return numbered
        return self._run(run)

    def _set_seq(self, seq: int) -> None:
        self._db.execute("INSERT INTO counter(id, seq) VALUES (1, ?) ON CONFLICT(id) "
                         "DO UPDATE SET seq=MAX(seq, excluded.seq)", (seq,))

    def owed(self) -> list[tuple[int, Line]]:
        """Events raised but not yet handed on, in `seq` order."""
        return self._run(lambda: [(int(s), json.loads(t)) for s, t in self._db.execute(
            "SELECT seq, line FROM outbox WHERE delivered=0 ORDER BY seq")])

    def delivered(self, seq: int) -> None:
        def run() -> None:
            self._db.execute("UPDATE outbox SET delivered=1 WHERE seq=?", (seq,))
            self._db.execute("DELETE FROM outbox WHERE delivered=1 AND seq < ?",
                             (seq - KEEP_DELIVERED,))
        self._run(run)

    def raise_seq(self, at_least: int) -> None:
        """Number new events above `at_least` (the highest `seq` the service holds)."""
        self._run(lambda: self._set_seq(at_least))

    # -- bookkeeping ------------------------------------------------------------------------

    def flag(self, key: str) -> bool:
        return self._run(lambda: self._db.execute(
            "SELECT 1 FROM meta WHERE key=?", (key,)).fetchone() is not None)

    def set_flag(self, key: str) -> None:
        self._run(lambda: self._db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, '1')", (key,)))

    def attempt(self, digest: str) -> int:
        """Count one more attempt at a message (before it is handled); how many so far."""
        def run() -> int:
            self._db.execute("INSERT INTO attempts(digest, count) VALUES (?, 1) "
                             "ON CONFLICT(digest) DO UPDATE SET count=count+1", (digest,))
            return int(self._db.execute("SELECT count FROM attempts WHERE digest=?",
                                        (digest,)).fetchone()[0])
        return self._run(run)

    def settled(self, digest: str) -> None:
        self._run(lambda: self._db.execute("DELETE FROM attempts WHERE digest=?", (digest,)))

    def dead_letter(self, topic: str, payload: bytes, reason: str, *,
                    digest: str | None = None) -> None:
        """Keep aside a message that cannot be read (its first 64 KiB and a byte: longer
        payloads are refused unread anyway), forgetting the attempts at `digest`."""
        def run() -> None:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO dead_letters(topic, payload, reason) VALUES (?,?,?)",
                    (topic.encode("utf-8", "replace").decode(), payload[:65537],
                     reason[:500]))
                if digest is not None:
                    self._db.execute("DELETE FROM attempts WHERE digest=?", (digest,))
        self._run(run)

    def dead_letters(self) -> list[DeadLetter]:
        return self._run(lambda: [
            DeadLetter(int(i), str(a), str(t), bytes(p), str(r)) for i, a, t, p, r in
            self._db.execute("SELECT id, at, topic, payload, reason FROM dead_letters "
                             "ORDER BY id")])

    # -- looking up -------------------------------------------------------------------------

    def job_uuid(self, number: int) -> str | None:
        """The UUID of a job not deleted."""
        row = self._run(lambda: self._db.execute(
            "SELECT uuid FROM jobs WHERE id=? AND deleted=0", (number,)).fetchone())
        return None if row is None else str(row[0])

    def job_number(self, uuid: str) -> int | None:
        row = self._run(lambda: self._db.execute(
            "SELECT id FROM jobs WHERE uuid=?", (uuid,)).fetchone())
        return None if row is None else int(row[0])

    def job_status(self, uuid: str) -> str | None:
        """The last known Flamenco status of a job (None: unknown or deleted)."""
        row = self._run(lambda: self._db.execute(
            "SELECT flamenco FROM jobs WHERE uuid=? AND deleted=0", (uuid,)).fetchone())
        return None if row is None else row[0]

    def task_uuid(self, number: int, work: str) -> str | None:
        """The task a work item name stands for (the latest, if two tasks share a name)."""
        row = self._run(lambda: self._db.execute(
            "SELECT uuid FROM tasks WHERE job=? AND work=? ORDER BY rowid DESC LIMIT 1",
            (number, work)).fetchone())
        return None if row is None else str(row[0])

    def task_status(self, uuid: str) -> str | None:
        row = self._run(lambda: self._db.execute(
            "SELECT flamenco FROM tasks WHERE uuid=?", (uuid,)).fetchone())
        return None if row is None else str(row[0])

    def jobs(self) -> list[tuple[int, str]]:
        """Every (number, uuid) pair, in number order, deleted jobs included."""
        return self._run(lambda: [(int(n), str(u)) for n, u in self._db.execute(
            "SELECT id, uuid FROM jobs ORDER BY id")])
