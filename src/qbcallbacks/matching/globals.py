"""Which global callbacks an event fires: once per matching event, with no job.

A global callback has no job, so its atoms can only name what needs none: the short global
forms (`global`, `globaltime-<T>`, `globalrepeat-<T>-<I>`, matched by type and extra as for
universal rules) and full forms whose context is a job id (`complete-job-12`), matched by the
ordinary rules of `spec/semantics.md`. `self`, `parent` and labels name jobs relative to the
callback's own, which it does not have; `global_trigger_problem` says so at submission.

A time event fires a global callback once per instant: the instant it stands for (a
`globaltime` extra, or the latest instant of a `globalrepeat` grid at or before the clock) is
remembered, and an instant at or before the last one fired is not fired again, which is what
keeps a restart (whose scheduler raises an instant already past at once) from firing it twice.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator

from ..model.events import Event, JobCallback
from ..model.globals import GlobalCallback
from ..model.triggers import (
    DONE_NAMES,
    TIME_TYPES,
    AllOf,
    EventPattern,
    TriggerNode,
    item_key,
    time_extra,
)
from .firing import Firing


def global_trigger_problem(trigger: TriggerNode) -> str | None:
    """Why a trigger cannot be a global callback's (it names a job relative to its own)."""
    for atom in trigger.events():
        kind = atom.context_kind
        if kind in ("self", "parent", "label"):
            return (f"a global callback has no job, so {atom.format()!r} names nothing: use "
                    f"a global form (global, globaltime-<T>, globalrepeat-<T>-<I>) or a job "
                    f"id as the context (such as {atom.name or 'complete'}-{atom.type}-12)")
    return None


def atom_matches(atom: EventPattern, event: Event) -> bool:
    """Whether `event` matches `atom` for a callback that has no job."""
    if atom.name is None:  # a short global form
        return event.type == atom.type and atom.extra in (None, "*", event.extra)
    if atom.type != event.type:
        return False
    name = event.name
    if atom.name != name and not (atom.name == "done" and name in DONE_NAMES):
        return False
    if atom.context is None or not atom.context.isdigit() or int(atom.context) != event.job:
        return False
    if atom.extra in (None, "*") or event.type == "job":
        return True
    return item_key(event.type, atom.extra) == item_key(event.type, event.extra)


def instant_of(event: Event, now: float) -> float | None:
    """The Qube instant a time event stands for, at Qube time `now`; None for other events."""
    if event.type not in TIME_TYPES or event.extra is None:
        return None
    found = time_extra(event.type, event.extra)
    if isinstance(found, str):
        return None
    start, interval = found
    if interval <= 0 or now <= start:
        return start
    return start + math.floor((now - start) / interval) * interval


class _Entry:
    __slots__ = ("atoms", "callback", "job_callback", "seen", "trigger")

    def __init__(self, callback: GlobalCallback, trigger: TriggerNode) -> None:
        self.callback = callback
        self.trigger = trigger
        self.atoms = list(trigger.events())
        self.seen: set[int] = set()
        self.job_callback = JobCallback(triggers=callback.trigger, language=callback.language,
                                        code=callback.code)


def _holds(node: TriggerNode, seen: set[int], counter: Iterator[int]) -> bool:
    if isinstance(node, EventPattern):
        return next(counter) in seen
    results = [_holds(op, seen, counter) for op in node.operands]
    return all(results) if isinstance(node, AllOf) else any(results)


class GlobalMatcher:
    """The global callbacks in force and their compound state; thread-safe."""

    def __init__(self, parse: Callable[[str], TriggerNode],
                 on_instant: Callable[[int, float], None] | None = None) -> None:
        self._parse = parse
        self._on_instant = on_instant
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}

    def set(self, callbacks: Iterable[GlobalCallback]) -> None:
        """Make `callbacks` the set in force; one kept keeps its compound state."""
        with self._lock:
            old, new = self._entries, {}
            for cb in sorted(callbacks, key=lambda c: c.id):
                kept = old.get(cb.id)
                new[cb.id] = kept if kept is not None and kept.callback == cb \
                    else _Entry(cb, self._parse(cb.trigger))
            self._entries = new  # whole at once: `idle` reads it without the lock

    def add(self, callback: GlobalCallback) -> None:
        entry = _Entry(callback, self._parse(callback.trigger))
        with self._lock:
            self._entries[callback.id] = entry

    def remove(self, callback_id: int) -> bool:
        with self._lock:
            return self._entries.pop(callback_id, None) is not None

    @property
    def idle(self) -> bool:
        """No global callback in force: nothing to match. Read without the lock (a callback
        added meanwhile only waits for the next event)."""
        return not self._entries

    def triggers(self) -> dict[int, TriggerNode]:
        """The trigger of each global callback in force, by id."""
        with self._lock:
            return {cid: e.trigger for cid, e in self._entries.items()}

    def observe(self, event: Event, now: float, only: int | None = None,
                skip: frozenset[int] = frozenset()) -> list[Firing]:
        """The global firings of one event, by id; `now` is the Qube time (for repeats).
        `only` and `skip` name the callbacks that take it (a time instant owed to one, or
        already seen by some)."""
        instant = instant_of(event, now)
        out: list[Firing] = []
        with self._lock:
            for cid, entry in self._entries.items():
                if (only is not None and cid != only) or cid in skip:
                    continue
                hits = {i for i, atom in enumerate(entry.atoms) if atom_matches(atom, event)}
                if not hits:
                    continue
                last = entry.callback.last_instant
                if instant is not None and last is not None and instant <= last:
                    continue  # this instant already fired it (before a restart, say)
                entry.seen |= hits
                if not _holds(entry.trigger, entry.seen, iter(range(len(entry.atoms)))):
                    continue
                entry.seen.clear()
                if instant is not None:
                    entry.callback = entry.callback.model_copy(update={"last_instant": instant})
                    if self._on_instant is not None:
                        self._on_instant(cid, instant)
                out.append(Firing(job=0, event=event, trigger=entry.trigger.format(),
                                  job_callback=entry.job_callback, index=cid))
        return out

