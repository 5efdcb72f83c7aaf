"""The adapter's durable memory: job numbers, task names and what each message became.

Flamenco names jobs and tasks by UUID; triggers and `jobinfo` need job numbers. A job's number
is given the first time the adapter sees its UUID and never changes (SQLite, `AUTOINCREMENT`,
so a number is never reused either). Each message's translation (its event lines and the
numbers of the line protocol's `seq`) is stored in the same transaction as the numbers it
assigned, keyed by a digest of topic and payload: a message the broker delivers again after a
crash becomes exactly the same events with the same `seq`, which the service acknowledges
without running them twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import QbCallbacksError
from .messages import JOB_STATUS, TASK_STATUS, JobUpdate, TaskUpdate, work_name

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE TABLE IF NOT EXISTS tasks (
    uuid TEXT PRIMARY KEY,
    job INTEGER NOT NULL,
    work TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS tasks_work ON tasks(job, work);
CREATE TABLE IF NOT EXISTS messages (
    digest TEXT PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    lines TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
"""

#: Translations kept for redelivered messages; older ones are pruned.
KEEP_MESSAGES = 100_000


class StateError(QbCallbacksError):
    """The adapter's state database cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class Translation:
    """What one message became: event-stream lines numbered `first_seq`, `first_seq + 1`,
    ...; `delivered` when they were all handed on before (a redelivery)."""

    digest: str
    first_seq: int
    lines: tuple[dict[str, Any], ...]
    delivered: bool


def digest(topic: str, payload: bytes) -> str:
    return hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()


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

    # -- translating -----------------------------------------------------------------------

    def translate(self, topic: str, payload: bytes, update: JobUpdate | TaskUpdate,
                  ) -> Translation:
        """The events `update` stands for, numbered; the same answer for a redelivery."""
        key = digest(topic, payload)
        with self._lock:
            try:
                row = self._db.execute("SELECT first_seq, lines, delivered FROM messages "
                                       "WHERE digest=?", (key,)).fetchone()
                if row is not None:
                    return Translation(key, int(row[0]), tuple(json.loads(row[1])),
                                       bool(row[2]))
                self._db.execute("BEGIN IMMEDIATE")
                lines = (self._job_lines(update) if isinstance(update, JobUpdate)
                         else self._task_lines(update))
                got = self._db.execute("SELECT seq FROM counter WHERE id=1").fetchone()
                first = (int(got[0]) if got else 0) + 1
                self._db.execute("INSERT INTO counter(id, seq) VALUES (1, ?) ON CONFLICT(id) "
                                 "DO UPDATE SET seq=excluded.seq",
                                 (first + max(len(lines), 1) - 1,))
                self._db.execute("INSERT INTO messages(digest, first_seq, lines) VALUES (?,?,?)",
                                 (key, first, json.dumps(lines)))
                self._db.execute("DELETE FROM messages WHERE first_seq < ?",
                                 (first - KEEP_MESSAGES,))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StateError(f"cannot write the adapter state {self.path}: {exc}") from exc
        return Translation(key, first, tuple(lines), False)

    def delivered(self, key: str) -> None:
        """Mark a message's events as handed on (the broker may still deliver it again)."""
        with self._lock:
            try:
                self._db.execute("UPDATE messages SET delivered=1 WHERE digest=?", (key,))
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the adapter state {self.path}: {exc}") from exc

    def raise_seq(self, at_least: int) -> None:
        """Number new messages above `at_least` (the highest `seq` the service holds)."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO counter(id, seq) VALUES (1, ?) ON CONFLICT(id) "
                                 "DO UPDATE SET seq=MAX(seq, excluded.seq)", (at_least,))
            except sqlite3.Error as exc:
                raise StateError(f"cannot write the adapter state {self.path}: {exc}") from exc

    def _job_number(self, uuid: str) -> tuple[int, bool]:
        """The job's number, and whether it was given just now."""
        row = self._db.execute("SELECT id FROM jobs WHERE uuid=?", (uuid,)).fetchone()
        if row is not None:
            return int(row[0]), False
        cur = self._db.execute("INSERT INTO jobs(uuid) VALUES (?)", (uuid,))
        return int(cur.lastrowid or 0), True

    def _job_lines(self, update: JobUpdate) -> list[dict[str, Any]]:
        number, new = self._job_number(update.id)
        state, event = JOB_STATUS[update.status]
        if update.was_deleted:
            state, event = "removed", "removed"
        elif update.previous_status == update.status and not new:
            event = None  # a change of something else than the status
        name = update.name or self._db.execute(
            "SELECT name FROM jobs WHERE id=?", (number,)).fetchone()[0]
        self._db.execute("UPDATE jobs SET name=?, status=? WHERE id=?", (name, state, number))
        job = {"id": number, "name": name, "status": state}
        lines = []
        if new:
            lines.append({"event": "submit", "type": "job", "job": job, "extra": None})
        if event is not None:
            lines.append({"event": event, "type": "job", "job": job, "extra": None})
        return lines

    def _task_lines(self, update: TaskUpdate) -> list[dict[str, Any]]:
        number, _ = self._job_number(update.job_id)
        state, event = TASK_STATUS[update.status]
        work = work_name(update.name, update.id)
        self._db.execute("INSERT INTO tasks(uuid, job, work, status) VALUES (?,?,?,?) "
                         "ON CONFLICT(uuid) DO UPDATE SET work=excluded.work, "
                         "status=excluded.status", (update.id, number, work, state))
        if event is None or update.previous_status == update.status:
            return []
        name, status = self._db.execute("SELECT name, status FROM jobs WHERE id=?",
                                        (number,)).fetchone()
        job = {"id": number, "name": name, "status": status}
        return [{"event": event, "type": "work", "job": job, "extra": work}]

    # -- looking up ------------------------------------------------------------------------

    def job_uuid(self, number: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT uuid FROM jobs WHERE id=?", (number,)).fetchone()
        return None if row is None else str(row[0])

    def job_number(self, uuid: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE uuid=?", (uuid,)).fetchone()
        return None if row is None else int(row[0])

    def task_uuid(self, number: int, work: str) -> str | None:
        """The task a work item name stands for (the latest, if two tasks share a name)."""
        with self._lock:
            row = self._db.execute("SELECT uuid FROM tasks WHERE job=? AND work=? "
                                   "ORDER BY rowid DESC LIMIT 1", (number, work)).fetchone()
        return None if row is None else str(row[0])

    def jobs(self) -> list[tuple[int, str]]:
        """Every (number, uuid) pair, in number order."""
        with self._lock:
            return [(int(n), str(u)) for n, u in
                    self._db.execute("SELECT id, uuid FROM jobs ORDER BY id").fetchall()]

