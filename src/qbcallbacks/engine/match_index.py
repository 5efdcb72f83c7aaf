"""The pieces the matcher's indexes are made of.

Everything here is plain mutable Python (slotted classes, dicts used as ordered sets) because it
is touched for every event; the frozen models stay at the edges, where data enters and leaves.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from .events import Job, JobCallback
from .match_compile import CompiledTrigger
from .rules import Rule

R = TypeVar("R")
#: A rule identity that survives a reload: (directory, file, canonical trigger text).
RuleKey = tuple[str, str, str]


class Bucket(Generic[R]):
    """Atoms of one (name, type, context): exact extras by value, `*`/omitted extras apart.

    The ref sets are dicts used as ordered sets, so removing a rule is O(1), not a list scan.
    """

    __slots__ = ("any", "exact")

    def __init__(self) -> None:
        self.exact: dict[str, dict[R, None]] = {}
        self.any: dict[R, None] = {}

    def add(self, extra: str | None, ref: R) -> None:
        if extra is None:
            self.any[ref] = None
        else:
            self.exact.setdefault(extra, {})[ref] = None

    def discard(self, extra: str | None, ref: R) -> None:
        if extra is None:
            self.any.pop(ref, None)
            return
        refs = self.exact.get(extra)
        if refs is not None:
            refs.pop(ref, None)
            if not refs:
                del self.exact[extra]

    def __bool__(self) -> bool:
        return bool(self.any or self.exact)


class RuleEntry:
    """A universal rule inside the matcher; its identity keys the compound state of instances.

    `order` is (position, serial): directory and line order, ties broken by when it was added.
    """

    __slots__ = ("compiled", "key", "order", "rule")

    def __init__(self, rule: Rule, order: tuple[int, int], compiled: CompiledTrigger) -> None:
        self.rule = rule
        self.order = order
        self.compiled = compiled
        self.key: RuleKey = (rule.directory, rule.file, compiled.text)


#: An atom of a universal rule: the rule and the atom's bit in its trigger.
RuleRef = tuple[RuleEntry, int]


class NameTypeIndex:
    """The universal atoms of one (event name, type), split by context kind.

    `self_`, `parent` and `glob` atoms concern every rule; `label` and `ident` are keyed by the
    label or job id the atom names, so an event looks up only its own job's label and id. Parts
    are created on first use: most names have atoms of one kind only, and at 100k rules the
    empty parts would cost more memory (and cache misses) than the atoms themselves.
    """

    __slots__ = ("glob", "ident", "label", "parent", "self_")

    def __init__(self) -> None:
        self.self_: Bucket[RuleRef] | None = None
        self.parent: Bucket[RuleRef] | None = None
        self.glob: Bucket[RuleRef] | None = None
        self.label: dict[str, Bucket[RuleRef]] | None = None
        self.ident: dict[int, Bucket[RuleRef]] | None = None


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
        self.watch: list[tuple[tuple[object, ...], str | None, tuple[CallbackEntry, int]]] = []

    @property
    def exhausted(self) -> bool:
        maximum = self.callback.maximum
        return maximum is not None and self.count >= maximum


CallbackRef = tuple[CallbackEntry, int]


class LiveJob:
    """A job with instances: the partial states of its universal rules (sparse: only rules
    with some atoms seen and not yet fired) and its job-specific callbacks."""

    __slots__ = ("callbacks", "job", "state")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.state: dict[RuleEntry, int] = {}
        self.callbacks: tuple[CallbackEntry, ...] = ()
