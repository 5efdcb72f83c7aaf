"""The pieces the matcher's indexes are made of.

Everything here is plain mutable Python (slotted classes, dicts used as ordered sets) because it
is touched for every event; the frozen models stay at the edges, where data enters and leaves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ..model.events import Job, JobCallback
from ..model.rules import Rule
from .compile import Atom, CompiledTrigger

K = TypeVar("K")
#: A rule identity that survives a reload: (directory, file, canonical trigger text).
RuleKey = tuple[str, str, str]


class Bucket(dict[str | None, dict[K, int]]):
    """Atoms of one (name, type, context), keyed by extra: exact extras by value, `*`/omitted
    extras under None.

    Each maps an owner (a rule or a job callback) to the bits of its atoms here, usually one
    (two when a trigger has, say, both `x-work-self` and `x-work-self-*`). Dicts make removing
    a rule O(1), not a list scan. The bucket is itself the dict, and owners are keys, not
    (owner, bit) pairs: on the firing path, every object between the index and the rule is a
    likely cache miss once there are thousands of rules.
    """

    __slots__ = ()

    def add(self, extra: str | None, owner: K, bit: int) -> None:
        refs = self.get(extra)
        if refs is None:
            refs = self[extra] = {}
        refs[owner] = refs.get(owner, 0) | bit

    def discard(self, extra: str | None, owner: K, bit: int) -> None:
        refs = self.get(extra)
        if refs is None:
            return
        left = refs.get(owner, 0) & ~bit
        if left:
            refs[owner] = left
        else:
            refs.pop(owner, None)
            if not refs:
                del self[extra]


class RuleEntry:
    """A universal rule inside the matcher; its identity keys the compound state of instances.

    `order` is (position, serial): directory and line order, ties broken by when it was added.
    `text`, `simple` and `test` repeat the compiled trigger's, so that the firing path reads
    one object per rule, not two (at 10k rules and more, each is likely a cache miss).
    """

    __slots__ = ("born", "compiled", "key", "order", "retired", "rule", "simple", "test", "text")

    def __init__(self, rule: Rule, order: tuple[int, int], compiled: CompiledTrigger,
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
        self.key: RuleKey = (rule.directory, rule.file, compiled.text)


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
