"""An in-memory supervisor: jobs with work items and subjobs, process groups and states.

It answers every `Supervisor` call, records each action and mail it was asked for (tests
assert on `actions` and `mails`), and turns state changes into the `Event`s a real supervisor
would report (`complete-work-<job>-<work>`, ...), collected in `events` for a driver to feed
to the matcher. It is what the tests and the CLI's simulations run against; the embedding
issue adds a persistent one.

Actions follow the transition table shared with the SQLite supervisor (`transitions`): an
action that does not apply in the current state returns False and changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..model._base import Frozen
from ..model.events import Event, Job, JobCallback
from ..model.statuses import EVENT_STATES
from ..model.supervisor import (
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
    jobinfo_record,
    parse_jobinfo_args,
)
from .transitions import Move, move


class ActionRecord(Frozen):
    """One action a callback asked for, and whether it applied."""

    target: Literal["job", "work", "subjob"]
    action: str
    job: int
    item: str | None = None
    ok: bool


@dataclass
class _JobState:
    id: int
    name: str
    label: str
    pgrp: int
    pid: int
    status: str
    user: str
    priority: int
    callbacks: tuple[JobCallback, ...]
    email: str = ""
    work: dict[str, str] = field(default_factory=dict)
    subjobs: dict[int, str] = field(default_factory=dict)

    def as_dict(self, agenda: bool, subjobs: bool) -> dict[str, Any]:
        return jobinfo_record(
            id=self.id, name=self.name, label=self.label, status=self.status, pgrp=self.pgrp,
            pid=self.pid, user=self.user, email=self.email, priority=self.priority,
            todo=len(self.work), agenda=list(self.work.items()) if agenda else None,
            subjobs=[(i, s, "") for i, s in self.subjobs.items()] if subjobs else None)


class MemorySupervisor:
    """A thread-safe, in-memory `Supervisor` with helpers to submit jobs and change states."""

    def __init__(self, first_id: int = 1) -> None:
        self._lock = threading.RLock()
        self._next_id = first_id
        self._jobs: dict[int, _JobState] = {}
        #: Every action asked of the supervisor, in order.
        self.actions: list[ActionRecord] = []
        #: Every mail sent.
        self.mails: list[MailMessage] = []
        #: Events raised by state changes since the last `drain_events`.
        self.events: list[Event] = []

    # -- building the farm -------------------------------------------------------------

    def submit(self, name: str = "", *, label: str = "", pgrp: int | None = None, pid: int = 0,
               status: str = "pending", work: Iterable[str] | Mapping[str, str] = (),
               work_status: str = "pending", subjobs: int = 0, user: str = "render",
               priority: int = 9999, callbacks: Iterable[JobCallback] = ()) -> Job:
        """Add a job and raise its `submit` event; `pgrp` None starts a new process group.

        `work` is a list of work names (all in `work_status`) or a mapping name -> status.
        A label must be unique in its process group, as in the original.
        """
        with self._lock:
            job_id = self._next_id
            self._next_id += 1
            group = job_id if pgrp is None else pgrp
            if label and any(j.pgrp == group and j.label == label for j in self._jobs.values()):
                raise HostError(f"label {label!r} is already used in process group {group}")
            items = (dict(work) if isinstance(work, Mapping)
                     else {str(w): work_status for w in work})
            state = _JobState(id=job_id, name=name or f"job{job_id}", label=label, pgrp=group,
                              pid=pid, status=status, user=user, priority=priority,
                              callbacks=tuple(callbacks), work=items,
                              subjobs={i: "pending" for i in range(subjobs)})
            self._jobs[job_id] = state
            self.events.append(Event(name="submit", type="job", job=job_id))
            return self._model(state)

    def job(self, job_id: int) -> Job:
        """The engine's view of a job (what the matcher attaches)."""
        with self._lock:
            return self._model(self._get(job_id))

    def jobs(self) -> list[Job]:
        with self._lock:
            return [self._model(j) for j in self._jobs.values()]

    def job_status(self, job_id: int) -> str:
        with self._lock:
            return self._get(job_id).status

    def work_status(self, job_id: int, work: str) -> str:
        with self._lock:
            return self._get(job_id).work[work]

    def subjob_status(self, job_id: int, subjob: int) -> str:
        with self._lock:
            return self._get(job_id).subjobs[subjob]

    def set_job_status(self, job_id: int, status: str) -> list[Event]:
        """Move a job to `status` as the farm would; returns (and records) the events."""
        with self._lock:
            state = self._get(job_id)
            return self._move_job(state, status)

    def set_work_status(self, job_id: int, work: str, status: str) -> list[Event]:
        """Move a work item to `status` (e.g. a frame completes); returns the events."""
        with self._lock:
            state = self._get(job_id)
            if work not in state.work:
                raise HostError(f"job {job_id} has no work item {work!r}")
            return self._move_item(state, "work", work, status)

    def set_subjob_status(self, job_id: int, subjob: int, status: str) -> list[Event]:
        with self._lock:
            state = self._get(job_id)
            if subjob not in state.subjobs:
                raise HostError(f"job {job_id} has no subjob {subjob}")
            return self._move_item(state, "subjob", subjob, status)

    def drain_events(self) -> list[Event]:
        """The events raised since the last call, oldest first."""
        with self._lock:
            out, self.events = self.events, []
            return out

    # -- the Supervisor protocol -------------------------------------------------------

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        query = parse_jobinfo_args(args)
        with self._lock:
            found = [j for j in self._jobs.values()
                     if j.id in query.ids or j.pgrp in query.pgrps]
            return [j.as_dict(query.agenda, query.subjobs) for j in found]

    def job_action(self, action: JobAction, job_id: int) -> bool:
        with self._lock:
            state = self._jobs.get(job_id)
            ok = False
            if state is not None:
                if action == "remove":
                    del self._jobs[job_id]
                    self.events.append(Event(name="removed", type="job", job=job_id))
                    ok = True
                else:
                    row = move("job", action, state.status)
                    if row is not None:
                        self._move_job(state, row.target)
                        self._cascade(state, row)
                        ok = True
            self.actions.append(ActionRecord(target="job", action=action, job=job_id, ok=ok))
            return ok

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        with self._lock:
            state = self._jobs.get(job_id)
            row = (move("work", action, state.work[work])
                   if state is not None and work in state.work else None)
            if row is not None and state is not None:
                self._move_item(state, "work", work, row.target)
            self.actions.append(ActionRecord(target="work", action=action, job=job_id,
                                             item=work, ok=row is not None))
            return row is not None

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        with self._lock:
            state = self._jobs.get(job_id)
            row = (move("subjob", action, state.subjobs[subjob])
                   if state is not None and subjob in state.subjobs else None)
            if row is not None and state is not None:
                self._move_item(state, "subjob", subjob, row.target)
                for other, status in list(state.subjobs.items()):
                    if other != subjob and status in row.siblings:
                        self._move_item(state, "subjob", other, row.target)
            self.actions.append(ActionRecord(target="subjob", action=action, job=job_id,
                                             item=str(subjob), ok=row is not None))
            return row is not None

    def mail(self, message: MailMessage) -> None:
        with self._lock:
            self.mails.append(message)

    # -- internals ---------------------------------------------------------------------

    def _get(self, job_id: int) -> _JobState:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise HostError(f"no job {job_id}") from None

    @staticmethod
    def _model(state: _JobState) -> Job:
        return Job(id=state.id, pgrp=state.pgrp, label=state.label, name=state.name,
                   pid=state.pid, status=state.status, user=state.user, email=state.email,
                   callbacks=state.callbacks)

    def _move_job(self, state: _JobState, status: str) -> list[Event]:
        if state.status == status:
            return []
        state.status = status
        return self._raise(status, "job", state.id, None)

    def _cascade(self, state: _JobState, row: Move) -> None:
        """Move the job's items the row names, work items in order, then subjobs."""
        for work, status in list(state.work.items()):
            if status in row.items:
                self._move_item(state, "work", work, row.target)
        for sub, status in list(state.subjobs.items()):
            if status in row.items:
                self._move_item(state, "subjob", sub, row.target)

    def _move_item(self, state: _JobState, kind: Literal["work", "subjob"], item: str | int,
                   status: str) -> list[Event]:
        if kind == "work":
            assert isinstance(item, str)
            if state.work[item] == status:
                return []
            state.work[item] = status
        else:
            assert isinstance(item, int)
            if state.subjobs[item] == status:
                return []
            state.subjobs[item] = status
        return self._raise(status, kind, state.id, str(item))

    def _raise(self, status: str, kind: Literal["job", "work", "subjob"], job_id: int,
               extra: str | None) -> list[Event]:
        # Only states that are event names raise events (`pending` is not one).
        if status not in EVENT_STATES:
            return []
        event = Event(name=status, type=kind, job=job_id, extra=extra)
        self.events.append(event)
        return [event]

