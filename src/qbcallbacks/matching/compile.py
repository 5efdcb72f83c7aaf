"""Triggers compiled for matching: each distinct atom is one bit, the expression a mask test.

An instance of a compound trigger then needs one integer of state (the atoms seen since it last
fired), and deciding whether it fires is a few integer operations instead of a tree walk over
models. Compiling is done once per distinct trigger: per model for universal rules, per text for
job-specific callbacks, which repeat the same few triggers across thousands of jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ..errors import TriggerError
from ..lang.trigger import parse_trigger_with_warnings
from ..model.triggers import AllOf, AnyOf, EventPattern, TriggerNode, item_key

AtomKind = Literal["self", "parent", "label", "id", "global"]
MaskTest = Callable[[int], bool]


class Atom(NamedTuple):
    """One event pattern reduced to what an index needs.

    `context` is the label (kind `label`) or the job id (kind `id`), else None; `extra` None
    means any item (written `*` or omitted). A named tuple: immutable, and built several
    times faster than a frozen dataclass, once per rule of a big rule set.
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


def _any_atom(mask: int) -> bool:
    """The test of every simple trigger: any atom seen makes it true (a mask only ever holds
    the trigger's own bits), so one function serves them all instead of a closure each."""
    return mask != 0


def compile_trigger(model: TriggerNode, text: str | None = None) -> CompiledTrigger:
    """Number the distinct atoms of `model` and build its mask test; `text` is its canonical
    text when the caller has it already."""
    if text is None:
        text = model.format()
    if type(model) is EventPattern:  # most rules: one atom, no state, the shared test
        return CompiledTrigger(text, (atom_of(model),), _any_atom, True)
    bits: dict[tuple[str | None, ...], int] = {}
    atoms: list[Atom] = []
    for pattern in model.events():
        key = _key(pattern)
        if key not in bits:
            bits[key] = 1 << len(atoms)
            atoms.append(atom_of(pattern))
    test = _mask_test(model, bits)
    simple = all(test(1 << i) for i in range(len(atoms)))
    return CompiledTrigger(text, tuple(atoms), _any_atom if simple else test, simple)


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
        # Keyed by canonical text, which equal models share, and which is much cheaper to
        # make than a pydantic model's hash (a walk over its fields).
        self._by_canonical: dict[str, CompiledTrigger] = {}
        self._by_text: dict[str, CompiledTrigger | TriggerError] = {}

    def for_model(self, model: TriggerNode) -> CompiledTrigger:
        text = model.format()
        found = self._by_canonical.get(text)
        if found is None:
            found = self._by_canonical[text] = compile_trigger(model, text)
        return found

    def batch(self) -> Callable[[TriggerNode], CompiledTrigger]:
        """`for_model` for one batch of rules: parsers hand out one model object per distinct
        text, so a batch looks each object up by id and formats it once. The ids are kept
        only while the batch's caller holds the models (no id is reused meanwhile)."""
        by_id: dict[int, tuple[TriggerNode, CompiledTrigger]] = {}
        for_model = self.for_model

        def compiled(model: TriggerNode) -> CompiledTrigger:
            hit = by_id.get(id(model))
            if hit is None:
                hit = by_id[id(model)] = (model, for_model(model))
            return hit[1]

        return compiled

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
