"""The `Supervisor` a Flamenco Manager stands behind: callbacks' questions and actions become
calls of its REST API, asked the way the Manager means them.

The Manager's state machine applies any status it is sent; which change makes sense from which
status is decided by its web interface (the actions it offers per status). An action here asks
only what the web interface would offer for the job's or task's current status, read first:
`resume`/`unblock` of a paused job asks for `requeueing` (the web interface's requeue, which
queues the paused tasks again; `queued` would only re-check completion), `fail` asks for
`failed`, `kill` for `cancel-requested`. Anything else answers False without asking.

The Manager answers 500 to a status change it did not make, whatever the cause, so a 500 is
followed by reading the job or task back: changed as asked is success, unchanged is a refusal
(False); a Manager that cannot be read at all is a fault (`HostError`, an error inside the
callback). Work actions reach any task of the job (the job's task list is read when the adapter
has not seen the task yet). The tables are in `spec/flamenco.md`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...model.supervisor import (
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
    jobinfo_record,
    parse_jobinfo_args,
)
from .api import ManagerAPI
from .messages import JOB_STATUS, TASK_STATUS, work_name
from .state import AdapterState

log = logging.getLogger("qbcallbacks.adapters.flamenco")

REASON = "asked by a qbcallbacks callback"


@dataclass(frozen=True, slots=True)
class Move:
    """A status to ask for, the current statuses it is asked from, and the statuses that show
    the Manager made it (the state machine may move on at once)."""

    target: str
    start: frozenset[str]
    done: frozenset[str]


def _move(target: str, start: str, done: str = "") -> Move:
    return Move(target, frozenset(start.split()), frozenset((done or target).split()))


_PAUSE = _move("pause-requested", "active canceled queued", "pause-requested paused")
_REQUEUE = _move("requeueing", "paused pause-requested", "requeueing queued active completed")

#: Job action -> what is asked of the Manager (None: Flamenco has nothing; `remove` deletes).
JOB_MOVES: dict[str, Move | None] = {
    "block": _PAUSE, "suspend": _PAUSE, "preempt": _PAUSE, "interrupt": _PAUSE,
    "unblock": _REQUEUE, "resume": _REQUEUE,
    "kill": _move("cancel-requested", "active failed paused pause-requested queued",
                  "cancel-requested canceled"),
    "fail": _move("failed", "active queued paused pause-requested requeueing "
                  "under-construction"),
    "migrate": None, "remove": None,
}
#: The statuses the web interface deletes a job from.
REMOVE_FROM = frozenset({"canceled", "completed", "failed", "paused", "queued"})

#: Work action -> the task status asked for, from which task statuses.
WORK_MOVES: dict[str, Move] = {
    "block": _move("paused", "queued soft-failed"),
    "unblock": _move("queued", "paused", "queued active completed"),
    "retry": _move("queued", "canceled completed failed", "queued active completed"),
    "requeue": _move("queued", "canceled completed failed", "queued active completed"),
    "kill": _move("canceled", "active queued soft-failed"),
    "complete": _move("completed", "active queued soft-failed paused canceled failed"),
    "fail": _move("failed", "active queued soft-failed paused"),
}


class FlamencoSupervisor:
    """Answers the `Supervisor` protocol from a Flamenco Manager."""

    def __init__(self, api: ManagerAPI, state: AdapterState) -> None:
        self.api = api
        self.state = state
        #: Mails callbacks asked for: Flamenco sends none, so they are logged and kept here.
        self.mails: list[MailMessage] = []

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        query = parse_jobinfo_args(args)
        found = []
        # Flamenco has no process groups: every job is its own group.
        for number in dict.fromkeys(query.ids + query.pgrps):
            uuid = self.state.job_uuid(number)
            job = None if uuid is None else self.api.job(uuid)
            if uuid is None or job is None:
                continue
            agenda = None
            if query.agenda:
                agenda = [(work_name(t.name, t.id), _state(TASK_STATUS, t.status))
                          for t in self.api.tasks(uuid) or []]
            found.append(jobinfo_record(
                id=number, name=job.name, label="", status=_state(JOB_STATUS, job.status),
                pgrp=number, pid=0, user="", priority=job.priority, agenda=agenda,
                subjobs=[] if query.subjobs else None))
        return found

    def job_action(self, action: JobAction, job_id: int) -> bool:
        uuid = self.state.job_uuid(job_id)
        if uuid is None or action not in JOB_MOVES:
            return False
        if action == "remove":
            job = self.api.job(uuid)
            if job is None or job.status not in REMOVE_FROM:
                return False
            return self.api.delete_job(uuid) == 204
        move = JOB_MOVES[action]
        if move is None:
            return False
        return _ask(move, lambda: _status(self.api.job(uuid)),
                    lambda: self.api.set_job_status(uuid, move.target, REASON),
                    f"{action} of job {job_id}")

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        uuid = self.state.job_uuid(job_id)
        move = WORK_MOVES.get(action)
        task = None if uuid is None or move is None else self._task(uuid, job_id, work)
        if task is None or move is None:
            return False
        return _ask(move, lambda: _status(self.api.task(task)),
                    lambda: self.api.set_task_status(task, move.target, REASON),
                    f"{action} of {job_id}:{work}")

    def _task(self, job_uuid: str, number: int, work: str) -> str | None:
        """The task a work name stands for (the last one, if two share a name): from the
        adapter's state, else from the job's task list."""
        known = self.state.task_uuid(number, work)
        if known is not None:
            return known
        named = [t.id for t in self.api.tasks(job_uuid) or [] if work_name(t.name, t.id) == work]
        return named[-1] if named else None

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        return False  # Flamenco runs tasks on workers; it has no job instances to act on

    def mail(self, message: MailMessage) -> None:
        log.warning("Flamenco sends no mail; a callback's mail to %s (%r) was not sent",
                    ", ".join(message.to), message.subject)
        self.mails.append(message)


def _state(table: dict[str, tuple[str, str | None]], status: str) -> str:
    """The engine state of a Flamenco status (`pending` for one a later Manager added)."""
    return table.get(status, ("pending", None))[0]


def _status(record: Any) -> str | None:
    return None if record is None else str(record.status)


def _ask(move: Move, read: Callable[[], str | None], post: Callable[[], int],
         what: str) -> bool:
    """Ask for `move` if the current status allows it; after anything but 204, the status
    read back tells a change the Manager made from one it refused."""
    before = read()
    if before is None or before not in move.start:
        log.info("%s: not asked, the Manager has it %s", what, before or "unknown")
        return False
    code = post()
    if code == 204:
        return True
    after = read()
    made = after is not None and after != before and after in move.done
    log.warning("%s: the Manager answered %d; %s", what, code,
                "the change was made" if made else f"refused (still {after or 'unknown'})")
    return made
