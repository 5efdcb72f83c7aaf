"""The pieces the matcher's indexes are made of.

Everything here is plain mutable Python (slotted classes, dicts used as ordered sets) because it
is touched for every event; the frozen models stay at the edges, where data enters and leaves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Generic, TypeVar

from ..model.events import Job, JobCallback
from ..model.rules import Rule
from ..model.triggers import EventPattern
from .compile import Atom, CompiledTrigger, TriggerCache, compile_event

K = TypeVar("K")
_new = object.__new__
#: Bits below a rule's position in its `order`: serials stay below 2**48.
SERIAL_BITS = 48
SERIAL_MASK = (1 << SERIAL_BITS) - 1


def order_of(position: int, serial: int) -> int:
    """One integer that sorts as (position, serial) does, for any position."""
    return (position << SERIAL_BITS) | (serial & SERIAL_MASK)
#: A rule identity that survives a reload: (directory, file, canonical trigger text).
RuleKey = tuple[str, str, str]


class Bucket(Generic[K]):
    """Atoms of one (name, type, context): those that take any item (`*` or omitted) in `any`,
    those with an exact extra in `exact`, by extra.

    Each maps an owner (a rule or a job callback) to the bits of its atoms here, usually one
    (two when a trigger has, say, both `x-work-self` and `x-work-self-*`). Dicts make removing
    a rule O(1), not a list scan; owners are keys, not (owner, bit) pairs: on the firing path,
    every object between the index and the rule is a likely cache miss once there are
    thousands of rules. Two slots rather than a dict keyed by extra: most buckets hold one
    rule's atom, and an empty dict's table costs more than the rule's own entry.
    """

    __slots__ = ("any", "exact")

    def __init__(self) -> None:
        self.any: dict[K, int] | None = None
        self.exact: dict[str, dict[K, int]] | None = None

    def __bool__(self) -> bool:
        return bool(self.any) or bool(self.exact)

    def refs(self, extra: str | None) -> dict[K, int] | None:
        """The owners of the atoms that take exactly `extra` (None: any item)."""
        if extra is None:
            return self.any
        return None if self.exact is None else self.exact.get(extra)

    def add(self, extra: str | None, owner: K, bit: int) -> None:
        if extra is None:
            refs = self.any
            if refs is None:
                self.any = {owner: bit}
                return
        else:
            exact = self.exact
            if exact is None:
                exact = self.exact = {}
            refs = exact.get(extra)
            if refs is None:
                exact[extra] = {owner: bit}
                return
        refs[owner] = refs.get(owner, 0) | bit

    def discard(self, extra: str | None, owner: K, bit: int) -> None:
        refs = self.refs(extra)
        if refs is None:
            return
        left = refs.get(owner, 0) & ~bit
        if left:
            refs[owner] = left
            return
        refs.pop(owner, None)
        if refs:
            return
        if extra is None:
            self.any = None
        else:
            assert self.exact is not None  # `refs` came from it
            del self.exact[extra]
            if not self.exact:
                self.exact = None


class RuleEntry:
    """A universal rule inside the matcher; its identity keys the compound state of instances.

    `order` sorts as (position, serial) would (directory and line order, ties broken by when
    it was added) but is one integer (`order_of`): one object per rule rather than three.
    `text`, `simple` and `test` repeat the compiled trigger's, so that the firing path reads
    one object per rule, not two (at 10k rules and more, each is likely a cache miss).
    """

    __slots__ = ("born", "compiled", "order", "retired", "rule", "simple", "test", "text")

    def __init__(self, rule: Rule, order: int, compiled: CompiledTrigger,
                 born: int = 0) -> None:
        self.rule = rule
        #: The rule-set generation it joined and the one it left (None: still in force); with
        #: `attach = submission` it has instances on the jobs attached in between.
        self.born = born
        self.retired: int | None = None
        self.order = order
        self.compiled = compiled
        self.text = compiled.text
        self.simple = compiled.simple
        self.test = compiled.test

    @property
    def key(self) -> RuleKey:
        """What identifies the rule across a reload; made when asked, not kept per rule."""
        return (self.rule.directory, self.rule.file, self.text)


class NameTypeIndex:
    """The universal atoms of one (event name, type), split by context kind; the matcher keys
    these by type, then name (None for the short global forms).

    `self_`, `parent` and `glob` atoms concern every rule; `label` and `ident` are keyed by the
    label or job id the atom names, so an event looks up only its own job's label and id. Parts
    are created on first use: most names have atoms of one kind only, and at 100k rules the
    empty parts would cost more memory (and cache misses) than the atoms themselves.
    """

    __slots__ = ("glob", "ident", "label", "parent", "self_")

    def __init__(self) -> None:
        self.self_: Bucket[RuleEntry] | None = None
        self.parent: Bucket[RuleEntry] | None = None
        self.glob: Bucket[RuleEntry] | None = None
        self.label: dict[str, Bucket[RuleEntry]] | None = None
        self.ident: dict[int, Bucket[RuleEntry]] | None = None


class CallbackEntry:
    """A job-specific callback of one live job: its state lives here, there is one instance.

    `watch` lists the index keys its atoms are registered under, to unregister them when the
    job changes, goes away, or the callback reaches its maximum.
    """

    __slots__ = ("callback", "compiled", "count", "index", "job", "mask", "watch")

    def __init__(self, job: int, index: int, callback: JobCallback,
                 compiled: CompiledTrigger) -> None:
        self.job = job
        self.index = index
        self.callback = callback
        self.compiled = compiled
        self.mask = 0
        self.count = 0
        #: (index key, extra, bit) of each registered atom.
        self.watch: list[tuple[tuple[object, ...], str | None, int]] = []

    @property
    def exhausted(self) -> bool:
        maximum = self.callback.maximum
        return maximum is not None and self.count >= maximum


class LiveJob:
    """A job with instances: the partial states of its universal rules (sparse: only rules
    with some atoms seen and not yet fired) and its job-specific callbacks."""

    __slots__ = ("callbacks", "gen", "job", "state")

    def __init__(self, job: Job, gen: int = 0) -> None:
        self.job = job
        #: The rule-set generation in force when the job was attached.
        self.gen = gen
        self.state: dict[RuleEntry, int] = {}
        self.callbacks: tuple[CallbackEntry, ...] = ()


def bits(atoms: tuple[Atom, ...]) -> Iterable[tuple[int, Atom]]:
    """Each atom with its bit in a compound state mask."""
    return ((1 << i, atom) for i, atom in enumerate(atoms))


def discard_member(groups: dict[int, dict[int, None]], key: int, member: int) -> None:
    """Take `member` out of the group `key`, dropping the group when it empties."""
    group = groups.get(key)
    if group is not None:
        group.pop(member, None)
        if not group:
            del groups[key]


def rule_bucket(index: dict[str, dict[str | None, NameTypeIndex]], atom: Atom,
                ) -> Bucket[RuleEntry]:
    """The bucket of the universal-rule index (by type, then name) that holds `atom`, made if
    it is not there yet."""
    by_name = index.get(atom.type)
    if by_name is None:
        by_name = index[atom.type] = {}
    nt = by_name.get(atom.name)
    if nt is None:
        nt = by_name[atom.name] = NameTypeIndex()
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


def index_rule(index: dict[str, dict[str | None, NameTypeIndex]], entry: RuleEntry) -> None:
    """Put a rule's atoms in the index: what `rule_bucket(...).add(...)` does for each, with
    the common case (a rule of one `self` atom) done in place, since a build does this once
    per rule."""
    atoms = entry.compiled.atoms
    if len(atoms) == 1:
        name, typ, kind, _, extra = atom = atoms[0]
        if kind == "self":
            by_name = index.get(typ)
            if by_name is None:
                by_name = index[typ] = {}
            nt = by_name.get(name)
            if nt is not None and nt.self_ is not None:
                nt.self_.add(extra, entry, 1)
                return
            # Made without calling `__init__`: a Python call per object costs more than
            # filling its slots here.
            bucket = _new(Bucket)
            if extra is None:
                bucket.any, bucket.exact = {entry: 1}, None
            else:
                bucket.any, bucket.exact = None, {extra: {entry: 1}}
            if nt is None:
                nt = by_name[name] = _new(NameTypeIndex)
                nt.parent = nt.glob = nt.label = nt.ident = None
            nt.self_ = bucket
            return
        rule_bucket(index, atom).add(extra, entry, 1)
        return
    for bit, atom in bits(atoms):
        rule_bucket(index, atom).add(atom.extra, entry, bit)


def add_entries(rules: Sequence[Rule], entries: dict[RuleEntry, None],
                index: dict[str, dict[str | None, NameTypeIndex]],
                by_key: dict[RuleKey, list[RuleEntry]] | None, cache: TriggerCache, gen: int,
                serial: int) -> int:
    """Make the entries of `rules` (of generation `gen`, serials from `serial` on) and index
    them; returns the next serial. The matcher's build: one pass, one rule at a time."""
    for_model, known = cache.for_model, cache.known
    # Parsers hand out one model per distinct trigger text: each model is formatted and
    # compiled once, found again by id (`rules` holds every model meanwhile).
    by_id: dict[int, CompiledTrigger] = {}
    mask = SERIAL_MASK
    for rule in rules:
        trigger = rule.trigger
        compiled = by_id.get(id(trigger))
        if compiled is None:
            compiled = by_id[id(trigger)] = (
                compile_event(trigger, known) if type(trigger) is EventPattern
                else for_model(trigger))
        # `RuleEntry(...)` with its slots filled here: no Python call per rule.
        entry = _new(RuleEntry)
        entry.rule, entry.born, entry.retired, entry.compiled = rule, gen, None, compiled
        entry.order = (rule.position << SERIAL_BITS) | (serial & mask)
        entry.text, _, entry.test, entry.simple = compiled
        serial += 1
        entries[entry] = None
        if by_key is not None:
            by_key.setdefault(entry.key, []).append(entry)
        index_rule(index, entry)
    return serial


#: Refs of one bucket that accept an event, and the jobs whose instances they concern.
Group = tuple[dict[RuleEntry, int], Collection[int]]


def gather(bucket: Bucket[RuleEntry], extra: str | None, jobs: Collection[int],
           groups: list[Group]) -> None:
    """Note the bucket's atoms that accept `extra`, for each of `jobs`."""
    refs = bucket.any
    if refs:
        groups.append((refs, jobs))
    if extra is not None and bucket.exact is not None:
        refs = bucket.exact.get(extra)
        if refs:
            groups.append((refs, jobs))
