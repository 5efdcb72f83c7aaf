"""Time events: which `time`, `repeat`, `globaltime` and `globalrepeat` events are due, and when.

Triggers name instants in Qube time: `dummy-time-self-<T>` and `globaltime-<T>` happen once at
T; `name-repeat-ctx-<T>-<I>` and `globalrepeat-<T>-<I>` happen at T and every I seconds after.
The scheduler turns those instants into ordinary events that enter the same stream as the
supervisor's, so matching stays the matcher's business.

Decisions (the original is silent):
- An instant already past when it becomes known (host started late, rule added by a reload)
  happens once, at once; a repeat then continues at its next future multiple, never in a burst.
- A job-scoped time event (`time`, `repeat`) is raised for every live job, or only for job N when
  the context is the numeric id N; the matcher then decides which instances it fires, exactly as
  for any other event. A global event is raised once, about job 0.
- An extra that is `*`, missing or not a number cannot be scheduled and is ignored (`check`
  accepts it; it can only be raised by the host itself).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from ..model._base import Frozen
from ..model.events import Event
from ..model.triggers import EventPattern, EventType, TriggerNode
from .clock import from_qube, to_qube

TIME_TYPES = frozenset({"time", "repeat", "globaltime", "globalrepeat"})
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


def time_spec(atom: EventPattern) -> TimeSpec | None:
    """The schedule an atom names, or None if it is not a schedulable time atom."""
    if atom.type not in TIME_TYPES or atom.extra is None or atom.extra == "*":
        return None
    repeat = atom.type in ("repeat", "globalrepeat")
    parts = atom.extra.split("-")
    try:
        if repeat:
            if len(parts) != 2:
                return None
            start, interval = float(parts[0]), float(parts[1])
            if not (math.isfinite(interval) and interval > 0):
                return None
        else:
            if len(parts) != 1:
                return None
            start, interval = float(parts[0]), 0.0
    except ValueError:
        return None
    if not math.isfinite(start):
        return None
    job = None
    if atom.context is not None and atom.context.isdigit() and atom.context.isascii():
        job = int(atom.context)
    name = atom.name if atom.name is not None else GLOBAL_NAME
    return TimeSpec(name=name, type=atom.type, extra=atom.extra, start=start, interval=interval,
                    job=job)


def time_specs(triggers: Iterable[TriggerNode]) -> set[TimeSpec]:
    """Every distinct schedule named anywhere in `triggers`."""
    out: set[TimeSpec] = set()
    for trigger in triggers:
        for atom in trigger.events():
            spec = time_spec(atom)
            if spec is not None:
                out.add(spec)
    return out


class Scheduler:
    """A heap of the next instant of every known schedule; not thread-safe (one owner).

    `due(now)` pops what is due and returns the events to emit; `live_jobs` tells it which jobs
    a job-scoped time event is raised for.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimeSpec]] = []
        self._specs: set[TimeSpec] = set()
        self._counter = 0

    @property
    def specs(self) -> frozenset[TimeSpec]:
        return frozenset(self._specs)

    def set_specs(self, specs: Iterable[TimeSpec], now: float) -> None:
        """Schedule exactly `specs`: new ones are added, vanished ones forgotten, kept ones keep
        their place (a reload does not re-fire a one-shot that already happened)."""
        wanted = set(specs)
        for spec in wanted - self._specs:
            self._push(spec.start, spec)
        self._specs = wanted
        self._heap = [item for item in self._heap if item[2] in wanted]
        heapq.heapify(self._heap)
        del now  # the first instant is kept even if past: `due` fires it at once

    def next_due(self) -> float | None:
        """Unix time of the next instant, or None when nothing is scheduled."""
        return from_qube(self._heap[0][0]) if self._heap else None

    def due(self, now: float, live_jobs: Iterable[int]) -> list[Event]:
        """Events of every instant at or before `now` (Unix time), in time order."""
        qnow = to_qube(now)
        jobs = sorted(set(live_jobs))
        out: list[Event] = []
        while self._heap and self._heap[0][0] <= qnow:
            at, _, spec = heapq.heappop(self._heap)
            out.extend(self._events(spec, jobs))
            if spec.interval > 0:
                # Next future multiple: a late host fires once, not once per missed period.
                periods = math.floor((qnow - at) / spec.interval) + 1
                self._push(at + periods * spec.interval, spec)
        return out

    def _push(self, at: float, spec: TimeSpec) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (at, self._counter, spec))

    @staticmethod
    def _events(spec: TimeSpec, jobs: list[int]) -> list[Event]:
        if spec.is_global:
            return [Event(name=spec.name, type=spec.type, job=0, extra=spec.extra)]
        targets = [spec.job] if spec.job is not None else jobs
        return [Event(name=spec.name, type=spec.type, job=j, extra=spec.extra)
                for j in targets]
