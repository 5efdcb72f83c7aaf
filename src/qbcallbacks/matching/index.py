"""The pieces the matcher's indexes are made of.

Everything here is plain mutable Python (slotted classes, dicts used as ordered sets) because it
is touched for every event; the frozen models stay at the edges, where data enters and leaves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Generic, TypeVar

from ..model.events import Job, JobCallback
from ..model.rules import Rule
from .compile import Atom, CompiledTrigger

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
    `text`, `simple` and `test` are the compiled trigger's, kept here so that the firing path
    reads one object per rule (at 10k rules and more, each is likely a cache miss); the atoms
    are not kept: the rare paths that need them (taking a rule out) compile them again from
    the rule's trigger, which a build would otherwise pay for on every rule.
    """

    __slots__ = ("born", "order", "retired", "rule", "simple", "test", "text")

    def __init__(self, rule: Rule, order: int, compiled: CompiledTrigger,
                 born: int = 0) -> None:
        self.rule = rule
        #: The rule-set generation it joined and the one it left (None: still in force); with
        #: `attach = submission` it has instances on the jobs attached in between.
        self.born = born
        self.retired: int | None = None
        self.order = order
        self.text = compiled.text
        self.simple = compiled.simple
        self.test = compiled.test

    @property
    def key(self) -> RuleKey:
        """What identifies the rule across a reload; made when asked, not kept per rule."""
        return (self.rule.directory, self.rule.file, self.text)


class NameTypeIndex(Bucket["RuleEntry"]):
    """The universal atoms of one (event name, type), split by context kind; the matcher keys
    these by type, then name (None for the short global forms).

    The `self` atoms, which most rules have, are this object's own bucket (`any` and
    `exact`): one object less per name, and one hop less for an event. `parent` and `glob`
    atoms concern every rule; `label` and `ident` are keyed by the label or job id the atom
    names, so an event looks up only its own job's label and id. Parts are created on first
    use: most names have atoms of one kind only, and at 100k rules the empty parts would cost
    more memory (and cache misses) than the atoms themselves.
    """

    __slots__ = ("glob", "ident", "label", "parent")

    def __init__(self) -> None:
        super().__init__()
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
        nt = by_name[atom.name] = _new(NameTypeIndex)  # `__init__`'s work, without the call
        nt.any = nt.exact = nt.parent = nt.glob = nt.label = nt.ident = None
    kind = atom.kind
    if kind == "self":
        return nt
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
