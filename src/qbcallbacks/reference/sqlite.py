"""A persistent reference `Supervisor` backed by SQLite: jobs, work items, subjobs, groups.

It lets the whole system run on one machine with no other service (`simulate` drives it), and
shows an embedder what the protocol asks for. Every state change is committed, then reported to
the listener as an event with a snapshot of the job, in the order the changes were made; the
listener runs outside the lock, so a callback that acts on a job from inside a run cannot
deadlock the store.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import QbCallbacksError
from ..model._base import Frozen
from ..model.events import Event, Job, JobCallback
from ..model.statuses import EVENT_STATES
from ..model.supervisor import (
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
    jobinfo_record,
    parse_jobinfo_args,
)
from .mail import MailTransport, MboxTransport
from .transitions import Move, move

#: Statuses whose entry the supervisor reports as an event of the same name.
EVENT_STATUSES = EVENT_STATES

Listener = Callable[[Event, Job], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    pgrp INTEGER NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    label TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    callbacks TEXT NOT NULL DEFAULT '[]',
    email TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS work (
    job INTEGER NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    retries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, name)
);
CREATE TABLE IF NOT EXISTS subjobs (
    job INTEGER NOT NULL,
    id INTEGER NOT NULL,
    status TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, id)
);
"""


class SupervisorError(QbCallbacksError):
    """A request the reference supervisor cannot honour (unknown job, bad spec)."""


class JobSpec(Frozen):
    """What a submission names; ids and the process group are given by the supervisor."""

    name: str
    label: str = ""
    user: str = "farm"
    frames: tuple[str, ...] = ()
    subjobs: int = 0
    #: Submit blocked (with every frame blocked), as a dependent job is.
    blocked: bool = False
    #: Index, in the same submission, of the parent job; None for none.
    parent: int | None = None
    callbacks: tuple[JobCallback, ...] = ()


class WorkItem(Frozen):
    job: int
    name: str
    position: int
    status: str
    retries: int


class SqliteSupervisor:
    """The reference supervisor. Thread-safe: one lock around one connection."""

    def __init__(self, path: str | Path = ":memory:", *, mail: MailTransport | None = None,
                 listener: Listener | None = None, default_user: str = "farm") -> None:
        self.path = str(path)
        #: The owner given to jobs that arrive without one (`apply`): mail needs someone.
        self.default_user = default_user
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "email" not in columns:  # a database written before jobs had an address
            self._db.execute("ALTER TABLE jobs ADD COLUMN email TEXT NOT NULL DEFAULT ''")
        self._lock = threading.RLock()
        default_mbox = (Path(self.path).with_name("mail.mbox") if self.path != ":memory:"
                        else Path("mail.mbox"))
        self.mailer: MailTransport = mail if mail is not None else MboxTransport(default_mbox)
        self.listener = listener
        self.sent: list[MailMessage] = []

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- reading ---------------------------------------------------------------------------

    def job(self, job_id: int) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, pgrp, pid, label, name, status, callbacks, user, email FROM jobs "
                "WHERE id=?",
                (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, pgrp, pid, label, name, status, callbacks, user, email FROM jobs "
                "ORDER BY id"
            ).fetchall()
        return [_job(r) for r in rows]

    def work(self, job_id: int) -> list[WorkItem]:
        with self._lock:
            rows = self._db.execute(
                "SELECT job, name, position, status, retries FROM work WHERE job=? "
                "ORDER BY position", (job_id,)).fetchall()
        return [WorkItem(job=j, name=n, position=p, status=s, retries=r)
                for j, n, p, s, r in rows]

    def subjobs(self, job_id: int) -> list[tuple[int, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, status, host FROM subjobs WHERE job=? ORDER BY id",
                                    (job_id,)).fetchall()
        return [(int(i), str(s), str(h)) for i, s, h in rows]

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        """`"-id", N` and `"-pgrp", N` (repeatable), with `-agenda` / `-subjobs` to include
        work items and subjobs; malformed arguments raise `HostError` (as every host does)."""
        query = parse_jobinfo_args(args)
        with self._lock:
            ids: dict[int, None] = {}
            for jid in query.ids:
                ids[jid] = None
            for pgrp in query.pgrps:
                for (jid,) in self._db.execute("SELECT id FROM jobs WHERE pgrp=? ORDER BY id",
                                               (pgrp,)).fetchall():
                    ids[int(jid)] = None
            out = []
            for key in ids:
                row = self._db.execute(
                    "SELECT id, pgrp, pid, label, name, status, user, email FROM jobs "
                    "WHERE id=?", (key,)).fetchone()
                if row is None:
                    continue
                jid, pgrp, pid, label, name, status, user, email = row
                work = self._db.execute("SELECT name, status FROM work WHERE job=? "
                                        "ORDER BY position", (jid,)).fetchall()
                subs = self._db.execute("SELECT id, status, host FROM subjobs WHERE job=? "
                                        "ORDER BY id", (jid,)).fetchall()
                out.append(jobinfo_record(
                    id=jid, name=name, label=label, status=status, pgrp=pgrp, pid=pid,
                    user=user, email=email, todo=len(work),
                    agenda=[(n, st) for n, st in work] if query.agenda else None,
                    subjobs=[(i, st, h) for i, st, h in subs] if query.subjobs else None))
        return out

    # -- the farm's side: submitting and driving -------------------------------------------

    def submit(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Submit jobs as one process group (the first job's id); emits `submit` for each,
        then `blocked` for those submitted blocked."""
        if not specs:
            return []
        events: list[tuple[str, str, int, str | None]] = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                first = int(self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM jobs")
                            .fetchone()[0])
                labels = [s.label for s in specs if s.label]
                if len(labels) != len(set(labels)):
                    raise SupervisorError("labels must be unique inside a process group")
                for i, spec in enumerate(specs):
                    jid = first + i
                    if spec.parent is not None and not 0 <= spec.parent < len(specs):
                        raise SupervisorError(f"job {spec.name!r}: no parent at {spec.parent}")
                    pid = 0 if spec.parent is None else first + spec.parent
                    status = "blocked" if spec.blocked else "pending"
                    self._db.execute(
                        "INSERT INTO jobs(id, pgrp, pid, label, name, user, status, callbacks) "
                        "VALUES (?,?,?,?,?,?,?,?)",
                        (jid, first, pid, spec.label, spec.name, spec.user, status,
                         json.dumps([c.model_dump() for c in spec.callbacks])))
                    self._db.executemany("INSERT INTO work VALUES (?,?,?,?,0)", [
                        (jid, frame, pos, status) for pos, frame in enumerate(spec.frames)])
                    self._db.executemany("INSERT INTO subjobs VALUES (?,?,?,'')", [
                        (jid, sub, status) for sub in range(spec.subjobs)])
                    events.append(("submit", "job", jid, None))
                    if spec.blocked:
                        events.append(("blocked", "job", jid, None))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._report(events)
        return [j for j in (self.job(first + i) for i in range(len(specs))) if j is not None]

    def set_job_status(self, job_id: int, status: str) -> list[Event]:
        """Move a job to `status`; returns (and reports) the event of that name, if any."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET status=? WHERE id=? AND status != ?",
                                   (status, job_id, status))
        return self._changed(cur.rowcount, status, "job", job_id, None)

    def set_work_status(self, job_id: int, work: str, status: str, *,
                        retry: bool = False) -> list[Event]:
        """Move a work item to `status`; returns (and reports) the event, if any."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE work SET status=?, retries=retries+? WHERE job=? AND name=? "
                "AND status != ?", (status, int(retry), job_id, work, status))
        return self._changed(cur.rowcount, status, "work", job_id, work)

    def set_subjob_status(self, job_id: int, subjob: int, status: str,
                          host: str = "") -> list[Event]:
        """Move a subjob to `status` (on `host`); returns (and reports) the event, if any."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE subjobs SET status=?, host=? WHERE job=? AND id=? AND status != ?",
                (status, host, job_id, subjob, status))
        return self._changed(cur.rowcount, status, "subjob", job_id, str(subjob))

    def _changed(self, rows: int, status: str, kind: str, job_id: int,
                 item: str | None) -> list[Event]:
        if not rows or status not in EVENT_STATES:
            return []
        self._report([(status, kind, job_id, item)])
        return [Event(name=status, type=kind, job=job_id, extra=item)]

    def apply(self, event: Event, job: Job | None = None) -> None:
        """Take the state an event reports (and the job, if given) without reporting anything:
        `replay` uses it so that callbacks see the jobs, frames and states of the stream."""
        with self._lock:
            if job is not None:
                self._db.execute(
                    "INSERT INTO jobs(id, pgrp, pid, label, name, user, status, callbacks, email) "
                    "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                    "pgrp=excluded.pgrp, pid=excluded.pid, label=excluded.label, "
                    "name=excluded.name, user=excluded.user, status=excluded.status, "
                    "callbacks=excluded.callbacks, email=excluded.email",
                    (job.id, job.pgrp, job.pid, job.label, job.name,
                     job.user or self.default_user, job.status,
                     json.dumps([c.model_dump() for c in job.callbacks]), job.email))
            elif event.job and not event.type.startswith("global"):
                self._db.execute("INSERT OR IGNORE INTO jobs(id, pgrp, user, status) "
                                 "VALUES (?,?,?,?)",
                                 (event.job, event.job, self.default_user, "pending"))
            status = event.name if event.name in EVENT_STATUSES else None
            if event.type == "job" and status is not None:
                self._db.execute("UPDATE jobs SET status=? WHERE id=?", (status, event.job))
            elif event.type == "work" and event.extra is not None:
                self._db.execute(
                    "INSERT INTO work(job, name, position, status) VALUES (?,?,"
                    "(SELECT COUNT(*) FROM work WHERE job=?),?) ON CONFLICT(job, name) DO "
                    "UPDATE SET status=COALESCE(?, status)",
                    (event.job, event.extra, event.job, status or "pending", status))
            elif event.type == "subjob" and event.extra is not None and event.extra.isdigit():
                self._db.execute(
                    "INSERT INTO subjobs(job, id, status) VALUES (?,?,?) ON CONFLICT(job, id) "
                    "DO UPDATE SET status=COALESCE(?, status)",
                    (event.job, int(event.extra), status or "pending", status))

    def emit(self, name: str, type_: str, job_id: int, extra: str | None = None) -> None:
        """Report an event that is not a state change (a user-defined or `modified` event)."""
        self._report([(name, type_, job_id, extra)])

    # -- the Supervisor protocol -----------------------------------------------------------

    def job_action(self, action: JobAction, job_id: int) -> bool:
        """Apply `action` as the shared transition table says; False when refused."""
        job = self.job(job_id)
        if job is None:
            return False
        if action == "remove":
            return bool(self.set_job_status(job_id, "removed"))
        row = move("job", action, job.status)
        if row is None:
            return False
        self.set_job_status(job_id, row.target)
        self._set_items(job_id, row)
        return True

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        item = next((w for w in self.work(job_id) if w.name == work), None)
        row = None if item is None else move("work", action, item.status)
        if row is None:
            return False
        self.set_work_status(job_id, work, row.target, retry=action == "retry")
        return True

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        subs = {sub: (status, host) for sub, status, host in self.subjobs(job_id)}
        row = None if subjob not in subs else move("subjob", action, subs[subjob][0])
        if row is None:
            return False
        self._move_subjob(job_id, subjob, row, subs[subjob][1])
        for other, (status, host) in subs.items():
            if other != subjob and status in row.siblings:
                self._move_subjob(job_id, other, row, host)
        return True

    def mail(self, message: MailMessage) -> None:
        self.mailer.send(message)
        with self._lock:
            self.sent.append(message)

    # -- helpers ---------------------------------------------------------------------------

    def _set_items(self, job_id: int, row: Move) -> None:
        """Move the job's items the row names, reporting each: work in frame order, then
        subjobs."""
        if not row.items:
            return
        for item in self.work(job_id):
            if item.status in row.items:
                self.set_work_status(job_id, item.name, row.target)
        for sub, status, host in self.subjobs(job_id):
            if status in row.items:
                self._move_subjob(job_id, sub, row, host)

    def _move_subjob(self, job_id: int, subjob: int, row: Move, host: str) -> list[Event]:
        return self.set_subjob_status(job_id, subjob, row.target,
                                      "" if row.clear_host else host)

    def _report(self, events: Sequence[tuple[str, str, int, str | None]]) -> None:
        listener = self.listener
        if listener is None:
            return
        for name, type_, job_id, extra in events:
            job = self.job(job_id)
            if job is not None:
                listener(Event(name=name, type=type_, job=job_id, extra=extra), job)


def _job(row: Sequence[Any]) -> Job:
    jid, pgrp, pid, label, name, status, callbacks, user, email = row
    return Job(id=jid, pgrp=pgrp, pid=pid, label=label, name=name, status=status, user=user,
               email=email,
               callbacks=tuple(JobCallback(**c) for c in json.loads(callbacks)))
