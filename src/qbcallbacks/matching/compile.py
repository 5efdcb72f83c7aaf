"""Triggers compiled for matching: each distinct atom is one bit, the expression a mask test.

An instance of a compound trigger then needs one integer of state (the atoms seen since it last
fired), and deciding whether it fires is a few integer operations instead of a tree walk over
models. Compiling is done once per distinct trigger: per model for universal rules, per text for
job-specific callbacks, which repeat the same few triggers across thousands of jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..errors import TriggerError
from ..lang.trigger import parse_trigger_with_warnings
from ..model.triggers import AllOf, AnyOf, EventPattern, TriggerNode, item_key, trigger_text

AtomKind = Literal["self", "parent", "label", "id", "global"]
MaskTest = Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class Atom:
    """One event pattern reduced to what an index needs.

    `context` is the label (kind `label`) or the job id (kind `id`), else None; `extra` None
    means any item (written `*` or omitted).
    """

    name: str | None
    type: str
    kind: AtomKind
    context: str | int | None
    extra: str | None


def atom_of(pattern: EventPattern) -> Atom:
    kind = pattern.context_kind
    extra = None if pattern.extra == "*" else item_key(pattern.type, pattern.extra)
    if kind is None:
        return Atom(None, pattern.type, "global", None, extra)
    if kind == "id":
        return Atom(pattern.name, pattern.type, "id", int(pattern.context or "0"), extra)
    if kind == "label":
        return Atom(pattern.name, pattern.type, "label", pattern.context, extra)
    return Atom(pattern.name, pattern.type, kind, None, extra)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTrigger:
    """A trigger ready for matching.

    `atoms[i]` is bit `1 << i`. `simple` says that any single atom makes the trigger true (a
    lone event or an any-of of events): such instances never need stored state.
    """

    text: str
    atoms: tuple[Atom, ...]
    test: MaskTest
    simple: bool


def compile_trigger(model: TriggerNode) -> CompiledTrigger:
    """Number the distinct atoms of `model` and build its mask test."""
    bits: dict[tuple[str | None, ...], int] = {}
    atoms: list[Atom] = []
    for pattern in model.events():
        key = _key(pattern)
        if key not in bits:
            bits[key] = 1 << len(atoms)
            atoms.append(atom_of(pattern))
    test = _mask_test(model, bits)
    simple = all(test(1 << i) for i in range(len(atoms)))
    return CompiledTrigger(trigger_text(model), tuple(atoms), test, simple)


def _key(pattern: EventPattern) -> tuple[str | None, ...]:
    # A plain tuple: hashing it is much cheaper than hashing the frozen model.
    return (pattern.name, pattern.type, pattern.context, pattern.extra)


def _mask_test(node: TriggerNode, bits: dict[tuple[str | None, ...], int]) -> MaskTest:
    """A closure deciding whether the atoms in a mask make `node` true.

    Flat all-of / any-of nodes of plain events (nearly every real trigger) become one mask
    comparison; deeper nesting composes closures.
    """
    if isinstance(node, EventPattern):
        bit = bits[_key(node)]
        return lambda mask: mask & bit != 0
    operands = node.operands
    if all(isinstance(op, EventPattern) for op in operands):
        need = 0
        for op in operands:
            need |= bits[_key(op)]  # type: ignore[arg-type]  # all operands are events here
        if isinstance(node, AllOf):
            return lambda mask: mask & need == need
        return lambda mask: mask & need != 0
    parts = tuple(_mask_test(op, bits) for op in operands)
    if isinstance(node, AllOf):
        return lambda mask: all(part(mask) for part in parts)
    assert isinstance(node, AnyOf)
    return lambda mask: any(part(mask) for part in parts)


class TriggerCache:
    """Compiled triggers, once per distinct model and once per distinct text.

    Job-specific callbacks carry their triggers as text; parsing is cached here explicitly
    (rather than relying only on the parser's own bounded cache) so that a farm of jobs
    submitted with the same callbacks parses each text once for the matcher's lifetime. A text
    that does not parse is remembered too, with its error.
    """

    def __init__(self) -> None:
        # Parsers hand out one model object per distinct text, so most lookups hit `_by_id`
        # and skip hashing a pydantic model (a walk over its fields); the entry keeps the model
        # alive, so its id cannot be reused while cached.
        self._by_id: dict[int, tuple[TriggerNode, CompiledTrigger]] = {}
        self._by_model: dict[TriggerNode, CompiledTrigger] = {}
        self._by_text: dict[str, CompiledTrigger | TriggerError] = {}

    def for_model(self, model: TriggerNode) -> CompiledTrigger:
        hit = self._by_id.get(id(model))
        if hit is not None:
            return hit[1]
        found = self._by_model.get(model)
        if found is None:
            found = self._by_model[model] = compile_trigger(model)
        self._by_id[id(model)] = (model, found)
        return found

    def for_text(self, text: str) -> CompiledTrigger:
        """The compiled trigger of a job-specific callback; raises :class:`TriggerError`."""
        found = self._by_text.get(text)
        if found is None:
            try:
                model, _ = parse_trigger_with_warnings(text, file="<job callback>")
            except TriggerError as exc:
                found = exc
            else:
                found = self.for_model(model)
            self._by_text[text] = found
        if isinstance(found, TriggerError):
            raise found
        return found

    def __len__(self) -> int:
        return len(self._by_text)
