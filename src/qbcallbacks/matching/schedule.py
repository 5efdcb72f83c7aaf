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
import itertools
import math
import random
from collections.abc import Iterable
from typing import NamedTuple

from ..errors import QbCallbacksError
from ..lang.trigger import parse_trigger
from ..model._base import Frozen
from ..model.events import Event, Job
from ..model.triggers import TIME_TYPES, EventPattern, EventType, TriggerNode, time_extra
from .clock import from_qube, to_qube
from .owner import RULES, Audience, Owner, Stamp, job_owner

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


class Raised(NamedTuple):
    """An event the scheduler raises, with what it stands for (its instant, its owner)."""

    event: Event
    stamp: Stamp


_NEVER = -math.inf


class Scheduler:
    """A heap of the next instant of every known schedule; not thread-safe (one owner).

    Schedules come from owners (`owner.py`): the universal rules (`set_specs`), each live
    job's own callbacks (`set_job_specs`, `drop_job`) and each global callback (`set_owner`);
    one schedule named by several owners is kept once, and raised once per instant for all.
    An owner that takes up a schedule after one of its instants was raised is owed that
    instant: a heap entry for it alone. `raise_due(now, live_jobs)` pops what is due;
    `audience` (on the matcher's side of the stream) says whose callbacks take a raised
    event, so that each owner sees each instant once, however the raise and its
    taking-up interleave.
    """

    def __init__(self) -> None:
        #: (instant, order, schedule, the one owner it is owed to or None for all of them)
        self._heap: list[tuple[float, int, TimeSpec, Owner | None]] = []
        self._owners: dict[TimeSpec, set[Owner]] = {}
        self._by_owner: dict[Owner, set[TimeSpec]] = {}
        self._jobs: set[int] = set()  # ids of the jobs whose own callbacks hold schedules
        #: The schedules by the event text they raise (name, type, extra).
        self._keyed: dict[tuple[str, str, str], set[TimeSpec]] = {}
        #: The latest instant raised for all, per schedule.
        self._raised: dict[TimeSpec, float] = {}
        #: The latest instant each owner's callbacks took, per schedule, and from which raise.
        self._seen: dict[tuple[Owner, TimeSpec], tuple[float, int]] = {}
        self._counter = 0
        #: Raise ids: random from the start, so that a stamp read back from the journal after
        #: a restart is never taken for one of this run's raises.
        self._raises = itertools.count(random.getrandbits(52) << 10)

    @property
    def specs(self) -> frozenset[TimeSpec]:
        return frozenset(self._owners)

    def set_specs(self, specs: Iterable[TimeSpec], now: float = 0.0) -> None:
        """Schedule exactly `specs` for the universal rules: new ones are added, vanished ones
        forgotten, kept ones keep their place (a reload does not re-fire a one-shot that
        already happened). A first instant already past is kept: `due` fires it at once."""
        self.set_owner(RULES, set(specs))

    def set_job_specs(self, job: int, specs: Iterable[TimeSpec]) -> bool:
        """Schedule exactly `specs` for job `job`'s own callbacks (attach or update); True when
        that changed what is scheduled."""
        return self.set_owner(job_owner(job), set(specs))

    def drop_job(self, job: int) -> None:
        """The job was removed: forget the schedules only its callbacks named."""
        self.set_owner(job_owner(job), set())

    def owns_job(self, job: int) -> bool:
        """Whether job `job`'s own callbacks hold any schedule: most jobs' do not, and their
        events need no update at all."""
        return job in self._jobs

    def set_owner(self, owner: Owner, wanted: set[TimeSpec]) -> bool:
        """Schedule exactly `wanted` for `owner`; True when that changed anything."""
        before = self._by_owner.get(owner, set())
        if wanted == before:
            return False
        for spec in wanted - before:
            owners = self._owners.get(spec)
            if owners is None:
                owners = self._owners[spec] = set()
                self._keyed.setdefault((spec.name, spec.type, spec.extra), set()).add(spec)
                self._push(spec.start, spec, None)
            elif spec in self._raised:
                # Taken up after an instant was raised: that instant is owed to it alone.
                self._push(self._raised[spec], spec, owner)
            owners.add(owner)
        gone = False
        for spec in before - wanted:
            owners = self._owners[spec]
            owners.discard(owner)
            self._seen.pop((owner, spec), None)
            if not owners:
                self._forget(spec)
                gone = True
        if wanted:
            self._by_owner[owner] = wanted
        else:
            self._by_owner.pop(owner, None)
        if owner.kind == "job":
            (self._jobs.add if wanted else self._jobs.discard)(owner.id)
        if gone:
            self._heap = [item for item in self._heap if item[2] in self._owners]
            heapq.heapify(self._heap)
        return True

    def _forget(self, spec: TimeSpec) -> None:
        del self._owners[spec]
        self._raised.pop(spec, None)
        key = (spec.name, spec.type, spec.extra)
        same = self._keyed[key]
        same.discard(spec)
        if not same:
            del self._keyed[key]

    def next_due(self) -> float | None:
        """Unix time of the next instant, or None when nothing is scheduled."""
        return from_qube(self._heap[0][0]) if self._heap else None

    def due(self, now: float, live_jobs: Iterable[int]) -> list[Event]:
        """The events of `raise_due`, without their stamps."""
        return [raised.event for raised in self.raise_due(now, live_jobs)]

    def raise_due(self, now: float, live_jobs: Iterable[int]) -> list[Raised]:
        """Events of every instant at or before `now` (Unix time), in time order; an event
        is raised only about a live job, and once however many schedules name it. An instant
        owed to one owner comes after the others, stamped with that owner."""
        qnow = to_qube(now)
        live = set(live_jobs)
        jobs = sorted(live)
        out: dict[tuple[str, str, str, int], Raised] = {}
        owed: list[Raised] = []
        raise_id = next(self._raises)
        while self._heap and self._heap[0][0] <= qnow:
            at, _, spec, owner = heapq.heappop(self._heap)
            if owner is not None:
                if owner in self._owners.get(spec, ()):
                    owed.extend(self._owed(spec, owner, at, live))
                continue
            if spec.interval > 0:
                # The latest instant of the grid: a late host fires once, not once per
                # missed period, then goes on with the next one.
                at += math.floor((qnow - at) / spec.interval) * spec.interval
                self._push(at + spec.interval, spec, None)
            self._raised[spec] = at
            for event in self._events(spec, jobs, live):
                out.setdefault((event.name, event.type, event.extra or "", event.job),
                               Raised(event, Stamp(at, None, raise_id)))
        return [*out.values(), *owed]

    def _owed(self, spec: TimeSpec, owner: Owner, at: float, live: set[int]) -> list[Raised]:
        # A job owner may be taken up before the matcher made it live: it is about to be.
        reach = live | {owner.id} if owner.kind == "job" else live
        stamp = Stamp(at, owner, next(self._raises))
        return [Raised(event, stamp)
                for event in self._events(spec, sorted(reach), reach)]

    def audience(self, event: Event, stamp: Stamp) -> Audience | None:
        """Whose callbacks take a raised event, at the moment it is matched (in stream
        order); None when nobody's does (an owed instant its owner already took). Every
        owner that takes it is marked as having seen its instant."""
        specs = [spec for spec in self._keyed.get((event.name, event.type, event.extra or ""),
                                                  ())
                 if spec.job is None or spec.job == event.job]
        mark = (stamp.instant, stamp.raise_id)
        if stamp.owner is not None:
            mine = [spec for spec in specs if stamp.owner in self._owners[spec]]
            if not mine or all(self._saw(stamp.owner, spec, mark) for spec in mine):
                return None
            for spec in mine:
                self._seen[stamp.owner, spec] = mark
            return Audience(only=stamp.owner, instant=stamp.instant)
        takes: set[Owner] = set()
        saw: set[Owner] = set()
        for spec in specs:
            for owner in self._owners[spec]:
                if self._saw(owner, spec, mark):
                    saw.add(owner)
                else:
                    takes.add(owner)
                    self._seen[owner, spec] = mark
        return Audience(skip=frozenset(saw - takes), instant=stamp.instant)

    def _saw(self, owner: Owner, spec: TimeSpec, mark: tuple[float, int]) -> bool:
        """Whether the owner already took this instant (or a later one) from another raise
        (the events of one raise, about several jobs, all reach it)."""
        instant, raise_id = self._seen.get((owner, spec), (_NEVER, -1))
        return instant >= mark[0] and raise_id != mark[1]

    def _push(self, at: float, spec: TimeSpec, owner: Owner | None) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, spec, owner))

    @staticmethod
    def _events(spec: TimeSpec, jobs: list[int], live: set[int]) -> list[Event]:
        if spec.is_global:
            return [Event(name=spec.name, type=spec.type, job=0, extra=spec.extra)]
        # A numeric (or owner's own) context names one job: raised only while it is live.
        targets = jobs if spec.job is None else [spec.job] if spec.job in live else []
        return [Event(name=spec.name, type=spec.type, job=j, extra=spec.extra)
                for j in targets]
