"""The compiled matcher: which callbacks one event fires, for which jobs, in firing order.

Rules are compiled into indexes keyed by (event name, type), then by context kind; an event
looks up only its own keys, so its cost is O(1 + the firings and compound updates it causes)
whatever the number of rules and jobs. Process-group and parent maps of live jobs turn a label
or parent atom into exactly the instances it concerns. The plain evaluator this is proven
against lives in the test suite (`tests/support/reference_matcher.py`); `spec/semantics.md`
is the contract both follow.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Literal

from ..lang.source import collector_paused
from ..model.events import Event, Job
from ..model.rules import Rule
from ..model.triggers import DONE_NAMES, GLOBAL_TYPES, item_key
from .build import add_entries
from .compile import TriggerCache
from .firing import Firing
from .index import (
    CallbackEntry,
    LiveJob,
    NameTypeIndex,
    RuleEntry,
    RuleKey,
    order_of,
    rule_bucket,
)
from .index import Group as _Group
from .index import bits as _bits
from .index import discard_member as _discard
from .index import gather as _gather
from .owner import RULES, Audience
from .resolve import resolve_rules
from .watch import CallbackWatch

#: From this many rules on, a build ends by moving every object the process holds into the
#: collector's permanent generation (`gc.freeze`): a big rule set lives as long as the
#: process, and otherwise the collector would scan its million objects once right after the
#: build and again at every full collection, which costs more than the build itself.
_FREEZE_AT = 10_000
#: The index of a type no rule mentions.
_NO_NAMES: dict[str | None, NameTypeIndex] = {}

#: Which rules a live job has instances of after a reload: those in force when it was attached
#: (`submission`, the original's) or always the current ones (`live`).
AttachPolicy = Literal["submission", "live"]
__all__ = ["AttachPolicy", "Firing", "Matcher"]


class Matcher:
    """Universal rules plus live jobs; `observe` says which callbacks an event fires.

    Pure and synchronous: it keeps only matching state (live jobs, the partial states of
    compound triggers, firing counts) and runs nothing. Not thread-safe; the dispatcher owns it.
    """

    def __init__(self, rules: Iterable[Rule] = (), *, attach: AttachPolicy = "submission",
                 ) -> None:
        self.attach_policy: AttachPolicy = attach
        #: Rule-set generation: bumped by every change of the rules once a job is live.
        self._gen = 0
        #: Rules taken out of the set that still have instances on older jobs (`submission`).
        self._retired: set[RuleEntry] = set()
        #: True once some rule does not apply to every live job (`submission` after a change).
        self._gated = False
        self._cache = TriggerCache()
        #: By type, then name (None: the short global forms).
        self._index: dict[str, dict[str | None, NameTypeIndex]] = {}
        self._entries: dict[RuleEntry, None] = {}
        #: Rules by identity, made when a first reload or removal needs it (a set that is
        #: only ever loaded once does not pay for it).
        self._by_key: dict[RuleKey, list[RuleEntry]] | None = None
        self._serial = 0
        self._live: dict[int, LiveJob] = {}
        self._pgrp: dict[int, dict[int, None]] = {}
        self._children: dict[int, dict[int, None]] = {}
        self._watch = CallbackWatch()
        self.add_rules(rules)

    # -- rules -------------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The universal rules, in firing order."""
        return tuple(e.rule for e in sorted(self._entries, key=lambda e: e.order))

    def add_rules(self, rules: Iterable[Rule]) -> None:
        """Add rules; each costs only its own atoms, the others are not touched. With
        `attach = submission` they have instances only on jobs attached from now on."""
        rules = list(rules)
        if rules:
            self._next_generation()
        self._add(rules)

    def _add(self, rules: Iterable[Rule]) -> None:
        # A big rule set allocates a few objects per rule and none in a cycle: the collector
        # would rescan the growing heap again and again for nothing.
        with collector_paused():
            self._serial = add_entries(rules if isinstance(rules, (list, tuple)) else list(rules),
                                       self._entries, self._index, self._by_key, self._gen,
                                       self._serial)
            if len(self._entries) >= _FREEZE_AT:
                gc.freeze()

    def _keys(self) -> dict[RuleKey, list[RuleEntry]]:
        """The rules by identity (directory, file, trigger text), in firing order."""
        if self._by_key is None:
            self._by_key = {}
            for entry in self._entries:  # in the order they were added, as kept from then on
                self._by_key.setdefault(entry.key, []).append(entry)
        return self._by_key

    def remove_rules(self, rules: Iterable[Rule]) -> None:
        """Remove one loaded rule per given rule with the same directory, file and trigger."""
        gone: set[RuleEntry] = set()
        by_key = self._keys()
        for rule in rules:
            entries = by_key.get(self._key(rule))
            if entries:
                gone.add(entries.pop())
        self._next_generation()
        self._retire(gone)

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """Make `rules` the rule set (a reload), keeping what can be kept.

        A rule whose (directory, file, trigger text) was already loaded keeps its compound
        state on every job, even if it moved to another line; the others start fresh, and
        rules no longer present are dropped with their state.
        """
        self._next_generation()
        pool = {key: list(entries) for key, entries in self._keys().items()}
        fresh: list[Rule] = []
        for rule in rules:
            entries = pool.get(self._key(rule))
            if entries:
                entry = entries.pop(0)
                entry.rule = rule
                entry.order = order_of(rule.position, self._serial)
                self._serial += 1
            else:
                fresh.append(rule)
        gone = {e for entries in pool.values() for e in entries}
        self._add(fresh)
        self._retire(gone)

    def _next_generation(self) -> None:
        """A change of the rule set: under `submission`, jobs already live keep theirs."""
        if self.attach_policy == "submission" and self._live:
            self._gen += 1
            self._gated = True

    def _retire(self, gone: set[RuleEntry]) -> None:
        """Take rules out of the set; under `submission` they keep their instances on the
        jobs attached before, and are forgotten when the last of those is gone."""
        if self.attach_policy == "live" or not self._live:
            self._forget(gone)
            return
        for entry in gone:
            entry.retired = self._gen
            del self._entries[entry]
            self._unkey(entry)
        self._retired |= gone
        self._collect()

    def _collect(self) -> None:
        oldest = min((live.gen for live in self._live.values()), default=self._gen)
        done = {e for e in self._retired if e.retired is not None and e.retired <= oldest}
        if done:
            self._retired -= done
            self._forget(done)
        if not self._retired and all(e.born <= oldest for e in self._entries):
            self._gated = False  # every rule in force applies to every live job again

    def _gate(self, groups: list[_Group]) -> list[_Group]:
        """Each rule's atoms only for the jobs that have an instance of it (`submission`)."""
        live = self._live
        out: list[_Group] = []
        for refs, jobs in groups:
            for entry, bit in refs.items():
                born, retired = entry.born, entry.retired
                kept = [j for j in jobs if born <= live[j].gen
                        and (retired is None or live[j].gen < retired)]
                if kept:
                    out.append(({entry: bit}, kept))
        return out

    def _key(self, rule: Rule) -> RuleKey:
        return (rule.directory, rule.file, self._cache.for_model(rule.trigger).text)

    def _unkey(self, entry: RuleEntry) -> None:
        same = None if self._by_key is None else self._by_key.get(entry.key)
        if same is not None:
            if entry in same:
                same.remove(entry)
            if not same:
                del self._by_key[entry.key]  # type: ignore[union-attr]  # `same` came from it

    def _forget(self, gone: set[RuleEntry]) -> None:
        if not gone:
            return
        for entry in gone:
            self._entries.pop(entry, None)
            self._unkey(entry)
            for bit, atom in _bits(self._cache.for_model(entry.rule.trigger).atoms):
                rule_bucket(self._index, atom).discard(atom.extra, entry, bit)
        for live in self._live.values():
            if live.state:
                for entry in gone & live.state.keys():
                    del live.state[entry]

    # -- jobs --------------------------------------------------------------------------------

    def job(self, job_id: int) -> Job | None:
        """The live job with this id, if any."""
        live = self._live.get(job_id)
        return None if live is None else live.job

    @property
    def live_jobs(self) -> tuple[int, ...]:
        return tuple(sorted(self._live))

    def pending_states(self) -> int:
        """How many instances hold a partly satisfied compound trigger (memory is this)."""
        return sum(len(live.state) + sum(cb.mask != 0 for cb in live.callbacks)
                   for live in self._live.values())

    def attach(self, job: Job) -> None:
        """Attach a job (its instances of every rule and its own callbacks), or update it.

        An update keeps the job's compound states; a job-specific callback keeps its state and
        firing count if the triggers text at its index is unchanged. Raises
        :class:`~qbcallbacks.errors.TriggerError`, changing nothing, if one of the job's
        callbacks has a bad trigger.
        """
        live = self._live.get(job.id)
        if live is not None and (live.job is job or live.job == job):
            return
        compiled = [self._cache.for_text(cb.triggers) for cb in job.callbacks]
        if live is None:
            live = self._live[job.id] = LiveJob(job, self._gen)
            previous: dict[int, CallbackEntry] = {}
        else:
            self._unlink(live)
            previous = {cb.index: cb for cb in live.callbacks}
            live.job = job
        entries: list[CallbackEntry] = []
        for index, (callback, trig) in enumerate(zip(job.callbacks, compiled, strict=True)):
            entry = CallbackEntry(job.id, index, callback, trig)
            old = previous.get(index)
            if old is not None and old.callback.triggers == callback.triggers:
                entry.mask, entry.count = old.mask, old.count
            entries.append(entry)
        live.callbacks = tuple(entries)
        self._link(live)

    def detach(self, job_id: int) -> None:
        """Drop a job and its instances (what a `removed` job event does after matching)."""
        live = self._live.pop(job_id, None)
        if live is not None:
            self._unlink(live)
            if self._retired:
                self._collect()

    def _link(self, live: LiveJob) -> None:
        job = live.job
        self._pgrp.setdefault(job.pgrp, {})[job.id] = None
        if job.pid:
            self._children.setdefault(job.pid, {})[job.id] = None
        for entry in live.callbacks:
            if not entry.exhausted:
                self._watch.add(entry, job)

    def _unlink(self, live: LiveJob) -> None:
        job = live.job
        _discard(self._pgrp, job.pgrp, job.id)
        if job.pid:
            _discard(self._children, job.pid, job.id)
        for entry in live.callbacks:
            self._watch.remove(entry)

    # -- events ------------------------------------------------------------------------------

    def observe(self, event: Event, job: Job | None = None) -> list[Firing]:
        """The firings of one event, in firing order; updates the matching state.

        `job`, if given, is attached or updated first. A job first seen here is attached with
        default fields (job id 0 excepted: it means no job). After a `removed` job event the
        job's instances are dropped.
        """
        if job is not None:
            self.attach(job)
        x = event.job
        live = self._live
        xl = live.get(x)
        if xl is None and x != 0:
            self.attach(Job(id=x))
            xl = live[x]
        name, typ = event.name, event.type
        extra = None if typ == "job" else item_key(typ, event.extra)
        names = (name, "done") if name in DONE_NAMES else (name,)
        groups = self._groups(typ, names, x, xl, extra)
        firings = self._resolve_rules(groups, event) if groups else []
        if self._watch:
            firings.extend(self._watch.observe(event, x, xl, names, extra))
        if xl is not None and name == "removed" and typ == "job":
            self.detach(x)
        return firings

    def _groups(self, typ: str, names: tuple[str, ...], x: int, xl: LiveJob | None,
                extra: str | None) -> list[_Group]:
        """The universal rules' atoms an event about job `x` matches, with their jobs."""
        live = self._live
        # Matching atoms are gathered as (refs, jobs) groups first and crossed only when needed:
        # the usual event meets one group of one rule and resolves without any (rule, job) key.
        groups: list[_Group] = []
        by_name = self._index.get(typ, _NO_NAMES)
        for nm in names:
            nt = by_name.get(nm)
            if nt is None:
                continue
            if xl is not None:
                # The `self` atoms are the name's own bucket: `_gather(nt, ...)` in line.
                refs = nt.any
                if refs:
                    groups.append((refs, (x,)))
                if extra is not None and nt.exact is not None:
                    refs = nt.exact.get(extra)
                    if refs:
                        groups.append((refs, (x,)))
                if nt.label is not None:
                    label = xl.job.label
                    if label:
                        bucket = nt.label.get(label)
                        if bucket is not None:
                            _gather(bucket, extra, self._pgrp[xl.job.pgrp], groups)
            if nt.parent is not None:
                kids = self._children.get(x)
                if kids:
                    _gather(nt.parent, extra, kids, groups)
            if nt.ident is not None:
                bucket = nt.ident.get(x)
                if bucket is not None:
                    _gather(bucket, extra, live, groups)
        if typ in GLOBAL_TYPES:
            nt = by_name.get(None)
            if nt is not None and nt.glob is not None:
                _gather(nt.glob, extra, live, groups)
        return groups

    def _resolve_rules(self, groups: list[_Group], event: Event) -> list[Firing]:
        if self._gated:
            groups = self._gate(groups)
            if not groups:
                return []
        return resolve_rules(groups, event, self._live)

    def observe_for(self, event: Event, audience: Audience) -> list[Firing]:
        """The firings of a time event the engine raised, for the callbacks `audience`
        names: the universal rules' instances, and each job's own callbacks, unless left
        out. Unlike `observe`, it never attaches a job: an event about a job that is no
        longer live fires nothing (time events never make phantom jobs)."""
        x = event.job
        xl = self._live.get(x)
        if xl is None and x != 0:
            return []
        typ = event.type
        extra = item_key(typ, event.extra)
        names = (event.name, "done") if event.name in DONE_NAMES else (event.name,)
        firings: list[Firing] = []
        if audience.takes(RULES):
            groups = self._groups(typ, names, x, xl, extra)
            if groups:
                firings = self._resolve_rules(groups, event)
        jobs = audience.among("job")
        if jobs is not None and self._watch:
            only, skip = jobs
            firings.extend(self._watch.observe(event, x, xl, names, extra, only, skip))
        return firings
