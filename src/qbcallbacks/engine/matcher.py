"""The compiled matcher: which callbacks one event fires, for which jobs, in firing order.

Rules are compiled into indexes keyed by (event name, type), then by context kind; an event
looks up only its own keys, so its cost is O(1 + the firings and compound updates it causes)
whatever the number of rules and jobs. Process-group and parent maps of live jobs turn a label
or parent atom into exactly the instances it concerns. The plain evaluator this is proven
against lives in the test suite (`tests/reference_matcher.py`); `spec/semantics.md` is the
contract both follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from ._base import Frozen, trusted
from .events import Event, Job, JobCallback
from .match_compile import Atom, TriggerCache
from .match_index import (
    Bucket,
    CallbackEntry,
    CallbackRef,
    LiveJob,
    NameTypeIndex,
    RuleEntry,
    RuleKey,
    RuleRef,
)
from .rules import Rule
from .triggers import DONE_NAMES, GLOBAL_TYPES

_ORDER = itemgetter(0, 1)


class Firing(Frozen):
    """One callback instance fired by one event.

    Exactly one of `rule` (a universal callback) and `job_callback` (with its `index` in the
    job's list) is set; `job` is the job the instance is attached to, which is not always the
    job the event is about (`parent`, label and id contexts).
    """

    job: int
    event: Event
    #: Canonical text of the trigger that fired.
    trigger: str
    rule: Rule | None = None
    job_callback: JobCallback | None = None
    index: int | None = None

    @property
    def callback(self) -> str:
        """The universal callback's file name, or `job:<id>#<index>` for a job-specific one."""
        if self.rule is not None:
            return self.rule.file
        return f"job:{self.job}#{self.index}"

    @property
    def directory(self) -> str | None:
        """The rule's callback directory; None for a job-specific callback."""
        return None if self.rule is None else self.rule.directory


def _collect_bucket(bucket: Bucket[RuleRef], extra: str | None, jobs: Iterable[int],
                    hits: dict[tuple[RuleEntry, int], int]) -> None:
    """Add the bits of the bucket's atoms that accept `extra`, for each of `jobs`."""
    for refs in (bucket.any, bucket.exact.get(extra) if extra is not None else None):
        if not refs:
            continue
        for entry, bit in refs:
            for job in jobs:
                key = (entry, job)
                hits[key] = hits.get(key, 0) | bit


class Matcher:
    """Universal rules plus live jobs; `observe` says which callbacks an event fires.

    Pure and synchronous: it keeps only matching state (live jobs, the partial states of
    compound triggers, firing counts) and runs nothing. Not thread-safe; the dispatcher owns it.
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._cache = TriggerCache()
        self._index: dict[tuple[str | None, str], NameTypeIndex] = {}
        self._entries: dict[RuleEntry, None] = {}
        self._by_key: dict[RuleKey, list[RuleEntry]] = {}
        self._serial = 0
        self._live: dict[int, LiveJob] = {}
        self._pgrp: dict[int, dict[int, None]] = {}
        self._children: dict[int, dict[int, None]] = {}
        self._watch: dict[tuple[object, ...], Bucket[CallbackRef]] = {}
        #: How many job-callback atoms are registered per (name, type): a quick skip.
        self._watch_nt: dict[tuple[str | None, str], int] = {}
        self.add_rules(rules)

    # -- rules -------------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The universal rules, in firing order."""
        return tuple(e.rule for e in sorted(self._entries, key=lambda e: e.order))

    def add_rules(self, rules: Iterable[Rule]) -> None:
        """Add rules; each costs only its own atoms, the others are not touched."""
        for rule in rules:
            entry = RuleEntry(rule, (rule.position, self._serial),
                              self._cache.for_model(rule.trigger))
            self._serial += 1
            self._entries[entry] = None
            self._by_key.setdefault(entry.key, []).append(entry)
            for bit, atom in _bits(entry.compiled.atoms):
                self._rule_bucket(atom).add(atom.extra, (entry, bit))

    def remove_rules(self, rules: Iterable[Rule]) -> None:
        """Remove one loaded rule per given rule with the same directory, file and trigger."""
        gone: set[RuleEntry] = set()
        for rule in rules:
            entries = self._by_key.get(self._key(rule))
            if entries:
                gone.add(entries.pop())
        self._forget(gone)

    def replace_rules(self, rules: Iterable[Rule]) -> None:
        """Make `rules` the rule set (a reload), keeping what can be kept.

        A rule whose (directory, file, trigger text) was already loaded keeps its compound
        state on every job, even if it moved to another line; the others start fresh, and
        rules no longer present are dropped with their state.
        """
        pool = {key: list(entries) for key, entries in self._by_key.items()}
        fresh: list[Rule] = []
        for rule in rules:
            entries = pool.get(self._key(rule))
            if entries:
                entry = entries.pop(0)
                entry.rule = rule
                entry.order = (rule.position, self._serial)
                self._serial += 1
            else:
                fresh.append(rule)
        self._forget({e for entries in pool.values() for e in entries})
        self.add_rules(fresh)

    def _key(self, rule: Rule) -> RuleKey:
        return (rule.directory, rule.file, self._cache.for_model(rule.trigger).text)

    def _forget(self, gone: set[RuleEntry]) -> None:
        if not gone:
            return
        for entry in gone:
            del self._entries[entry]
            same = self._by_key.get(entry.key)
            if same is not None:
                if entry in same:
                    same.remove(entry)
                if not same:
                    del self._by_key[entry.key]
            for bit, atom in _bits(entry.compiled.atoms):
                self._rule_bucket(atom).discard(atom.extra, (entry, bit))
        for live in self._live.values():
            if live.state:
                for entry in gone & live.state.keys():
                    del live.state[entry]

    def _rule_bucket(self, atom: Atom) -> Bucket[RuleRef]:
        nt = self._index.get((atom.name, atom.type))
        if nt is None:
            nt = self._index[(atom.name, atom.type)] = NameTypeIndex()
        kind = atom.kind
        if kind == "self":
            if nt.self_ is None:
                nt.self_ = Bucket()
            return nt.self_
        if kind == "parent":
            if nt.parent is None:
                nt.parent = Bucket()
            return nt.parent
        if kind == "global":
            if nt.glob is None:
                nt.glob = Bucket()
            return nt.glob
        if kind == "label":
            assert isinstance(atom.context, str)
            if nt.label is None:
                nt.label = {}
            return nt.label.setdefault(atom.context, Bucket())
        assert isinstance(atom.context, int)
        if nt.ident is None:
            nt.ident = {}
        return nt.ident.setdefault(atom.context, Bucket())

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
            live = self._live[job.id] = LiveJob(job)
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

    def _link(self, live: LiveJob) -> None:
        job = live.job
        self._pgrp.setdefault(job.pgrp, {})[job.id] = None
        if job.pid:
            self._children.setdefault(job.pid, {})[job.id] = None
        for entry in live.callbacks:
            if not entry.exhausted:
                self._watch_callback(entry, job)

    def _unlink(self, live: LiveJob) -> None:
        job = live.job
        _discard(self._pgrp, job.pgrp, job.id)
        if job.pid:
            _discard(self._children, job.pid, job.id)
        for entry in live.callbacks:
            self._unwatch_callback(entry)

    def _watch_callback(self, entry: CallbackEntry, job: Job) -> None:
        for bit, atom in _bits(entry.compiled.atoms):
            nt = (atom.name, atom.type)
            if atom.kind == "self":
                key: tuple[object, ...] = ("s", job.id, *nt)
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
            ref = (entry, bit)
            self._watch.setdefault(key, Bucket()).add(atom.extra, ref)
            self._watch_nt[nt] = self._watch_nt.get(nt, 0) + 1
            entry.watch.append((key, atom.extra, ref))

    def _unwatch_callback(self, entry: CallbackEntry) -> None:
        for key, extra, ref in entry.watch:
            bucket = self._watch[key]
            bucket.discard(extra, ref)
            if not bucket:
                del self._watch[key]
            atom = entry.compiled.atoms[ref[1].bit_length() - 1]
            nt = (atom.name, atom.type)
            left = self._watch_nt[nt] - 1
            if left:
                self._watch_nt[nt] = left
            else:
                del self._watch_nt[nt]
        entry.watch.clear()

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
        extra = None if typ == "job" else event.extra
        names = (name, "done") if name in DONE_NAMES else (name,)
        hits: dict[tuple[RuleEntry, int], int] = {}
        index = self._index
        for nm in names:
            nt = index.get((nm, typ))
            if nt is None:
                continue
            if xl is not None:
                bucket = nt.self_
                if bucket is not None:
                    _collect_bucket(bucket, extra, (x,), hits)
                label = xl.job.label
                if label and nt.label is not None:
                    bucket = nt.label.get(label)
                    if bucket is not None:
                        _collect_bucket(bucket, extra, self._pgrp[xl.job.pgrp], hits)
            if nt.parent is not None:
                kids = self._children.get(x)
                if kids:
                    _collect_bucket(nt.parent, extra, kids, hits)
            if nt.ident is not None:
                bucket = nt.ident.get(x)
                if bucket is not None:
                    _collect_bucket(bucket, extra, live, hits)
        if typ in GLOBAL_TYPES:
            nt = index.get((None, typ))
            if nt is not None and nt.glob is not None:
                _collect_bucket(nt.glob, extra, live, hits)
        firings = self._resolve_rules(hits, event) if hits else []
        if self._watch_nt:
            firings.extend(self._callbacks(event, x, xl, names, extra))
        if xl is not None and name == "removed" and typ == "job":
            self.detach(x)
        return firings

    def _resolve_rules(self, hits: dict[tuple[RuleEntry, int], int],
                       event: Event) -> list[Firing]:
        fired: list[tuple[tuple[int, int], int, RuleEntry]] = []
        live = self._live
        for (entry, job), bits in hits.items():
            compiled = entry.compiled
            if compiled.simple:
                fired.append((entry.order, job, entry))
                continue
            state = live[job].state
            mask = state.get(entry, 0) | bits
            if compiled.test(mask):
                state.pop(entry, None)
                fired.append((entry.order, job, entry))
            else:
                state[entry] = mask
        if len(fired) > 1:
            fired.sort(key=_ORDER)
        return [
            trusted(Firing, job=job, event=event, trigger=entry.compiled.text, rule=entry.rule,
                    job_callback=None, index=None)
            for _, job, entry in fired
        ]

    def _callbacks(self, event: Event, x: int, xl: LiveJob | None, names: tuple[str, ...],
                   extra: str | None) -> list[Firing]:
        typ = event.type
        keys: list[tuple[object, ...]] = []
        for nm in names:
            if (nm, typ) in self._watch_nt:
                keys += [("s", x, nm, typ), ("p", x, nm, typ), ("i", x, nm, typ)]
                if xl is not None and xl.job.label:
                    keys.append(("l", xl.job.pgrp, xl.job.label, nm, typ))
        if typ in GLOBAL_TYPES and (None, typ) in self._watch_nt:
            keys.append(("g", typ))
        hits: dict[CallbackEntry, int] = {}
        for key in keys:
            bucket = self._watch.get(key)
            if bucket is None:
                continue
            refs = list(bucket.any)
            if extra is not None:
                refs += bucket.exact.get(extra, ())
            for entry, bit in refs:
                hits[entry] = hits.get(entry, 0) | bit
        fired: list[CallbackEntry] = []
        for entry, bits in hits.items():
            mask = entry.mask | bits
            if entry.compiled.test(mask):
                entry.mask = 0
                entry.count += 1
                fired.append(entry)
                if entry.exhausted:
                    self._unwatch_callback(entry)
            else:
                entry.mask = mask
        fired.sort(key=lambda e: (e.job, e.index))
        return [
            trusted(Firing, job=e.job, event=event, trigger=e.compiled.text, rule=None,
                    job_callback=e.callback, index=e.index)
            for e in fired
        ]


def _bits(atoms: tuple[Atom, ...]) -> Iterable[tuple[int, Atom]]:
    return ((1 << i, atom) for i, atom in enumerate(atoms))


def _discard(groups: dict[int, dict[int, None]], key: int, member: int) -> None:
    group = groups.get(key)
    if group is not None:
        group.pop(member, None)
        if not group:
            del groups[key]
