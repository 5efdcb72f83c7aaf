"""The reference evaluator: spec/semantics.md written as plainly as possible.

For every event it loops over every live job, every rule and every atom. It is slow on purpose
and shares no code with the compiled matcher beyond the data models, so that a differential
test between the two checks the matcher's indexes, not a copy of its logic.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbcallbacks.lang import parse_trigger
from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.rules import Rule
from qbcallbacks.model.triggers import AllOf, AnyOf, EventPattern, item_key

DONE = {"complete", "failed", "killed"}


@dataclass(frozen=True)
class RefFiring:
    job: int
    callback: str
    directory: str | None
    trigger: str


def atom_matches(atom: EventPattern, event: Event, attached: Job, about: Job | None) -> bool:
    """Does `atom`, in the instance attached to `attached`, match `event` (about `about`)?"""
    if atom.type != event.type:
        return False
    if atom.name is None:
        context_ok = True  # short global form: every instance
    else:
        name_ok = atom.name == event.name or (atom.name == "done" and event.name in DONE)
        if not name_ok:
            return False
        ctx = atom.context
        assert ctx is not None
        if ctx == "self":
            context_ok = event.job == attached.id
        elif ctx == "parent":
            context_ok = attached.pid != 0 and event.job == attached.pid
        elif ctx.isdigit() and ctx.isascii():
            context_ok = event.job == int(ctx)
        else:
            context_ok = (about is not None and about.pgrp == attached.pgrp
                          and about.label == ctx)
    if not context_ok:
        return False
    event_extra = None if event.type == "job" else item_key(event.type, event.extra)
    return atom.extra in (None, "*") or item_key(atom.type, atom.extra) == event_extra


def holds(trigger: EventPattern | AllOf | AnyOf, seen: set[EventPattern]) -> bool:
    if isinstance(trigger, EventPattern):
        return trigger in seen
    if isinstance(trigger, AllOf):
        return all(holds(op, seen) for op in trigger.operands)
    return any(holds(op, seen) for op in trigger.operands)


class ReferenceMatcher:
    def __init__(self, rules: list[Rule] | tuple[Rule, ...] = ()) -> None:
        self.rules: list[Rule] = []
        self.jobs: dict[int, Job] = {}
        # (rule key, occurrence, job id) -> atoms seen since the last firing
        self.seen: dict[tuple[tuple[str, str, str], int, int], set[EventPattern]] = {}
        # (job id, callback index) -> atoms seen / times fired
        self.cb_seen: dict[tuple[int, int], set[EventPattern]] = {}
        self.cb_count: dict[tuple[int, int], int] = {}
        self.replace_rules(rules)

    def _keyed(self) -> list[tuple[tuple[tuple[str, str, str], int], Rule]]:
        """Each rule with its identity: (directory, file, trigger) and its occurrence."""
        count: dict[tuple[str, str, str], int] = {}
        out = []
        for rule in self.rules:
            key = (rule.directory, rule.file, rule.trigger_text)
            out.append(((key, count.get(key, 0)), rule))
            count[key] = count.get(key, 0) + 1
        return out

    def replace_rules(self, rules: list[Rule] | tuple[Rule, ...]) -> None:
        self.rules = sorted(rules, key=lambda r: r.position)  # stable: ties keep their order
        kept = {k for k, _ in self._keyed()}
        self.seen = {k: v for k, v in self.seen.items() if (k[0], k[1]) in kept}

    def attach(self, job: Job) -> None:
        old = self.jobs.get(job.id)
        self.jobs[job.id] = job
        if old is None:
            return
        for index in range(len(old.callbacks)):
            same = (index < len(job.callbacks)
                    and job.callbacks[index].triggers == old.callbacks[index].triggers)
            if not same:
                self.cb_seen.pop((job.id, index), None)
                self.cb_count.pop((job.id, index), None)

    def drop(self, job_id: int) -> None:
        del self.jobs[job_id]
        self.seen = {k: v for k, v in self.seen.items() if k[2] != job_id}
        self.cb_seen = {k: v for k, v in self.cb_seen.items() if k[0] != job_id}
        self.cb_count = {k: v for k, v in self.cb_count.items() if k[0] != job_id}

    def observe(self, event: Event, job: Job | None = None) -> list[RefFiring]:
        if job is not None:
            self.attach(job)
        if event.job not in self.jobs and event.job != 0:
            self.attach(Job(id=event.job))
        about = self.jobs.get(event.job)
        out: list[RefFiring] = []
        for (key, occurrence), rule in self._keyed():
            for job_id in sorted(self.jobs):
                attached = self.jobs[job_id]
                matched = {a for a in rule.trigger.events()
                           if atom_matches(a, event, attached, about)}
                if not matched:
                    continue
                seen = self.seen.setdefault((key, occurrence, job_id), set())
                seen |= matched
                if holds(rule.trigger, seen):
                    del self.seen[(key, occurrence, job_id)]
                    out.append(RefFiring(job_id, rule.file, rule.directory, rule.trigger_text))
        for job_id in sorted(self.jobs):
            attached = self.jobs[job_id]
            for index, callback in enumerate(attached.callbacks):
                fired = self.cb_count.get((job_id, index), 0)
                if callback.maximum is not None and fired >= callback.maximum:
                    continue
                trigger = parse_trigger(callback.triggers)
                matched = {a for a in trigger.events()
                           if atom_matches(a, event, attached, about)}
                if not matched:
                    continue
                seen = self.cb_seen.setdefault((job_id, index), set())
                seen |= matched
                if holds(trigger, seen):
                    del self.cb_seen[(job_id, index)]
                    self.cb_count[(job_id, index)] = fired + 1
                    out.append(RefFiring(job_id, f"job:{job_id}#{index}", None,
                                         trigger.format()))
        if about is not None and event.name == "removed" and event.type == "job":
            self.drop(event.job)
        return out
