"""The job-specific callbacks of live jobs, indexed by the events their atoms watch.

Unlike universal rules, each callback belongs to one job and has one instance, so its atoms are
registered under keys that already name the job they concern (its own id, its parent, its
process group and label); an event then looks up only the keys its own job makes.
"""

from __future__ import annotations

from operator import attrgetter

from ..model.events import Event, Job
from ..model.triggers import GLOBAL_TYPES
from .firing import Firing, _firing
from .index import Bucket, CallbackEntry, LiveJob
from .index import bits as _bits

_JOB_INDEX = attrgetter("job", "index")
WatchKey = tuple[object, ...]


class CallbackWatch:
    """Where each live callback's atoms are registered; `observe` fires the callbacks."""

    __slots__ = ("keys", "per_name_type")

    def __init__(self) -> None:
        self.keys: dict[WatchKey, Bucket[CallbackEntry]] = {}
        #: How many atoms are registered per (name, type): a quick skip for other events.
        self.per_name_type: dict[tuple[str | None, str], int] = {}

    def __bool__(self) -> bool:
        return bool(self.per_name_type)

    def add(self, entry: CallbackEntry, job: Job) -> None:
        """Register the atoms of one callback of `job`."""
        for bit, atom in _bits(entry.compiled.atoms):
            nt = (atom.name, atom.type)
            if atom.kind == "self":
                key: WatchKey = ("s", job.id, *nt)
            elif atom.kind == "parent":
                if not job.pid:
                    continue  # no parent: the atom can never match
                key = ("p", job.pid, *nt)
            elif atom.kind == "label":
                key = ("l", job.pgrp, atom.context, *nt)
            elif atom.kind == "id":
                key = ("i", atom.context, *nt)
            else:
                key = ("g", atom.type)
            self.keys.setdefault(key, Bucket()).add(atom.extra, entry, bit)
            self.per_name_type[nt] = self.per_name_type.get(nt, 0) + 1
            entry.watch.append((key, atom.extra, bit))

    def remove(self, entry: CallbackEntry) -> None:
        for key, extra, bit in entry.watch:
            bucket = self.keys[key]
            bucket.discard(extra, entry, bit)
            if not bucket:
                del self.keys[key]
            atom = entry.compiled.atoms[bit.bit_length() - 1]
            nt = (atom.name, atom.type)
            left = self.per_name_type[nt] - 1
            if left:
                self.per_name_type[nt] = left
            else:
                del self.per_name_type[nt]
        entry.watch.clear()

    def _hits(self, event: Event, x: int, xl: LiveJob | None, names: tuple[str, ...],
              extra: str | None) -> dict[CallbackEntry, int]:
        """The callbacks with an atom that accepts the event, and the bits it sets."""
        typ = event.type
        keys: list[WatchKey] = []
        for nm in names:
            if (nm, typ) in self.per_name_type:
                keys += [("s", x, nm, typ), ("p", x, nm, typ), ("i", x, nm, typ)]
                if xl is not None and xl.job.label:
                    keys.append(("l", xl.job.pgrp, xl.job.label, nm, typ))
        if typ in GLOBAL_TYPES and (None, typ) in self.per_name_type:
            keys.append(("g", typ))
        hits: dict[CallbackEntry, int] = {}
        for key in keys:
            bucket = self.keys.get(key)
            if bucket is None:
                continue
            for refs in (bucket.any, None if extra is None else bucket.refs(extra)):
                if refs:
                    for entry, bit in refs.items():
                        hits[entry] = hits.get(entry, 0) | bit
        return hits

    def observe(self, event: Event, x: int, xl: LiveJob | None, names: tuple[str, ...],
                extra: str | None, only: int | None = None,
                skip: frozenset[int] = frozenset()) -> list[Firing]:
        """The callbacks `event` fires (about job `x`, live as `xl`), in (job, index) order;
        a callback that reaches its maximum stops watching. `only` and `skip` name the jobs
        whose callbacks take the event (a time instant owed to one job, or already seen)."""
        fired: list[CallbackEntry] = []
        hits = self._hits(event, x, xl, names, extra)
        if only is not None or skip:
            hits = {entry: bits for entry, bits in hits.items()
                    if entry.job == only or (only is None and entry.job not in skip)}
        for entry, bits in hits.items():
            mask = entry.mask | bits
            if entry.compiled.test(mask):
                entry.mask = 0
                entry.count += 1
                fired.append(entry)
                if entry.exhausted:
                    self.remove(entry)
            else:
                entry.mask = mask
        if len(fired) > 1:
            fired.sort(key=_JOB_INDEX)
        return [_firing(e.job, event, e.compiled.text, None, e.callback, e.index)
                for e in fired]
