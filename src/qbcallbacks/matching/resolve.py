"""Turning the atoms an event matched into firings: compound states updated, firing order.

The matcher gathers the buckets an event hits as (refs, jobs) groups; these functions cross
them with the live jobs' compound states only as far as needed (the usual event meets one
atom of one rule and resolves without building any (rule, job) key).
"""

from __future__ import annotations

from collections.abc import Collection
from operator import itemgetter

from ..model.events import Event
from .firing import Firing, _firing
from .index import Group, LiveJob, RuleEntry

_ORDER = itemgetter(0, 1)


def resolve_rules(groups: list[Group], event: Event, live: dict[int, LiveJob]) -> list[Firing]:
    """The firings of the universal rules in `groups`, in firing order."""
    if len(groups) == 1:
        refs, jobs = groups[0]
        if len(refs) == 1:
            for entry, bit in refs.items():
                return resolve_one(entry, bit, jobs, event, live)
    # Several groups, or several atoms in one: one rule may be hit by several atoms, or
    # several times for one job, so bits are merged per (rule, job) before resolving.
    hits: dict[tuple[RuleEntry, int], int] = {}
    for refs, jobs in groups:
        for entry, bit in refs.items():
            for job in jobs:
                key = (entry, job)
                hits[key] = hits.get(key, 0) | bit
    fired: list[tuple[int, int, RuleEntry]] = []
    for (entry, job), bits in hits.items():
        if entry.simple:
            fired.append((entry.order, job, entry))
            continue
        state = live[job].state
        mask = state.get(entry, 0) | bits
        if entry.test(mask):
            state.pop(entry, None)
            fired.append((entry.order, job, entry))
        else:
            state[entry] = mask
    if len(fired) > 1:
        fired.sort(key=_ORDER)
    return [_firing(job, event, entry.text, entry.rule, None, None) for _, job, entry in fired]


def resolve_one(entry: RuleEntry, bit: int, jobs: Collection[int], event: Event,
                live: dict[int, LiveJob]) -> list[Firing]:
    """One atom of one rule matched, for distinct `jobs`: no merging, ordered by job."""
    text, rule = entry.text, entry.rule
    if entry.simple:
        return [_firing(job, event, text, rule, None, None)
                for job in (jobs if len(jobs) == 1 else sorted(jobs))]
    fired: list[int] = []
    test = entry.test
    for job in jobs:
        state = live[job].state
        mask = state.get(entry, 0) | bit
        if test(mask):
            state.pop(entry, None)
            fired.append(job)
        else:
            state[entry] = mask
    if len(fired) > 1:
        fired.sort()
    return [_firing(job, event, text, rule, None, None) for job in fired]
