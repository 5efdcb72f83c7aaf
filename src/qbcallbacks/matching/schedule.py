"""Time events: which `time`, `repeat`, `globaltime` and `globalrepeat` events are due, and when.

Triggers name instants in Qube time: `dummy-time-self-<T>` and `globaltime-<T>` happen once at
T; `name-repeat-ctx-<T>-<I>` and `globalrepeat-<T>-<I>` happen at T and every I seconds after.
The scheduler turns those instants into ordinary events that enter the same stream as the
supervisor's, so matching stays the matcher's business. The rules are in `spec/semantics.md`
("Time events"): universal rules and job-specific callbacks are both scheduled; an event is
raised only about live jobs (a numeric context names one job, raised only while it is live:
never a phantom); a past instant happens once, at once; repeats stay on their grid.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from ..errors import QbCallbacksError
from ..lang.trigger import parse_trigger
from ..model._base import Frozen
from ..model.events import Event, Job
from ..model.triggers import TIME_TYPES, EventPattern, EventType, TriggerNode, time_extra
from .clock import from_qube, to_qube

#: The name given to a global time event, which has no name in its trigger.
GLOBAL_NAME = "dummy"


class TimeSpec(Frozen):
    """One schedulable instant (or series) named by a trigger atom."""

    name: str
    type: EventType
    extra: str
    #: First instant, Qube time.
    start: float
    #: Seconds between repeats; 0 for a one-shot.
    interval: float = 0.0
    #: Only this job (numeric context); None for every live job or for a global event.
    job: int | None = None

    @property
    def is_global(self) -> bool:
        return self.type.startswith("global")


def time_spec(atom: EventPattern, owner: Job | None = None) -> TimeSpec | None:
    """The schedule an atom names, or None if it is not a schedulable time atom.

    `owner` is the job of a job-specific callback: its `self` and `parent` contexts then name
    one job (the owner, its parent), as a numeric context does."""
    if atom.type not in TIME_TYPES or atom.extra is None or atom.extra == "*":
        return None
    when = time_extra(atom.type, atom.extra)
    if isinstance(when, str):
        return None  # the loader warned: this atom can never fire (QCB131, QCB132)
    start, interval = when
    job = None
    if atom.context is not None and atom.context.isdigit() and atom.context.isascii():
        job = int(atom.context)
    elif owner is not None and atom.context == "self":
        job = owner.id
    elif owner is not None and atom.context == "parent":
        if not owner.pid:
            return None  # no parent: nothing to raise the event about
        job = owner.pid
    name = atom.name if atom.name is not None else GLOBAL_NAME
    return TimeSpec(name=name, type=atom.type, extra=atom.extra, start=start, interval=interval,
                    job=job)


def time_specs(triggers: Iterable[TriggerNode], owner: Job | None = None) -> set[TimeSpec]:
    """Every distinct schedule named anywhere in `triggers` (of `owner`'s callbacks)."""
    out: set[TimeSpec] = set()
    for trigger in triggers:
        for atom in trigger.events():
            spec = time_spec(atom, owner)
            if spec is not None:
                out.add(spec)
    return out


def job_time_specs(job: Job) -> set[TimeSpec]:
    """The schedules of a job's own callbacks (bad trigger texts are the matcher's to report)."""
    triggers: list[TriggerNode] = []
    for callback in job.callbacks:
        try:
            triggers.append(parse_trigger(callback.triggers))
        except QbCallbacksError:
            continue
    return time_specs(triggers, job)


#: Who asked for a schedule: the universal rules (None) or one job's own callbacks.
_Owner = int | None


class Scheduler:
    """A heap of the next instant of every known schedule; not thread-safe (one owner).

    Schedules come from the universal rules (`set_specs`) and from each live job's own
    callbacks (`set_job_specs`, `drop_job`); one schedule named by several owners is kept
    once. `due(now, live_jobs)` pops what is due and returns the events to emit.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimeSpec]] = []
        self._owners: dict[TimeSpec, set[_Owner]] = {}
        self._by_owner: dict[_Owner, set[TimeSpec]] = {}
        self._counter = 0

    @property
    def specs(self) -> frozenset[TimeSpec]:
        return frozenset(self._owners)

    def set_specs(self, specs: Iterable[TimeSpec], now: float = 0.0) -> None:
        """Schedule exactly `specs` for the universal rules: new ones are added, vanished ones
        forgotten, kept ones keep their place (a reload does not re-fire a one-shot that
        already happened). A first instant already past is kept: `due` fires it at once."""
        self._set(None, set(specs))

    def set_job_specs(self, job: int, specs: Iterable[TimeSpec]) -> bool:
        """Schedule exactly `specs` for job `job`'s own callbacks (attach or update); True when
        that changed what is scheduled."""
        return self._set(job, set(specs))

    def drop_job(self, job: int) -> None:
        """The job was removed: forget the schedules only its callbacks named."""
        self._set(job, set())

    def _set(self, owner: _Owner, wanted: set[TimeSpec]) -> bool:
        before = self._by_owner.get(owner, set())
        if wanted == before:
            return False
        for spec in wanted - before:
            owners = self._owners.get(spec)
            if owners is None:
                owners = self._owners[spec] = set()
                self._push(spec.start, spec)
            owners.add(owner)
        gone = False
        for spec in before - wanted:
            owners = self._owners[spec]
            owners.discard(owner)
            if not owners:
                del self._owners[spec]
                gone = True
        if wanted:
            self._by_owner[owner] = wanted
        else:
            self._by_owner.pop(owner, None)
        if gone:
            self._heap = [item for item in self._heap if item[2] in self._owners]
            heapq.heapify(self._heap)
        return True

    def raised(self, specs: Iterable[TimeSpec]) -> list[Event]:
        """The events of the latest instant already raised of each global schedule among
        `specs`: a global callback that names one after it was raised is owed that instant
        (the catch-up rule), which `_set` cannot push again without raising it for all."""
        pending = {spec: at for at, _, spec in self._heap}
        out: list[Event] = []
        for spec in specs:
            if not spec.is_global or spec not in self._owners:
                continue
            at = pending.get(spec)
            if at is None or (spec.interval > 0 and at - spec.interval >= spec.start):
                out.extend(self._events(spec, [], set()))
        return out

    def next_due(self) -> float | None:
        """Unix time of the next instant, or None when nothing is scheduled."""
        return from_qube(self._heap[0][0]) if self._heap else None

    def due(self, now: float, live_jobs: Iterable[int]) -> list[Event]:
        """Events of every instant at or before `now` (Unix time), in time order; an event
        is raised only about a live job, and once however many schedules name it."""
        qnow = to_qube(now)
        live = set(live_jobs)
        jobs = sorted(live)
        out: dict[tuple[str, str, str, int], Event] = {}
        while self._heap and self._heap[0][0] <= qnow:
            at, _, spec = heapq.heappop(self._heap)
            for event in self._events(spec, jobs, live):
                out.setdefault((event.name, event.type, event.extra or "", event.job), event)
            if spec.interval > 0:
                # Next future multiple: a late host fires once, not once per missed period.
                periods = math.floor((qnow - at) / spec.interval) + 1
                self._push(at + periods * spec.interval, spec)
        return list(out.values())

    def _push(self, at: float, spec: TimeSpec) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, spec))

    @staticmethod
    def _events(spec: TimeSpec, jobs: list[int], live: set[int]) -> list[Event]:
        if spec.is_global:
            return [Event(name=spec.name, type=spec.type, job=0, extra=spec.extra)]
        # A numeric (or owner's own) context names one job: raised only while it is live.
        targets = jobs if spec.job is None else [spec.job] if spec.job in live else []
        return [Event(name=spec.name, type=spec.type, job=j, extra=spec.extra)
                for j in targets]
