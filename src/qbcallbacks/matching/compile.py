"""Triggers compiled for matching: each distinct atom is one bit, the expression a mask test.

An instance of a compound trigger then needs one integer of state (the atoms seen since it last
fired), and deciding whether it fires is a few integer operations instead of a tree walk over
models. Compiling is done once per distinct trigger: per model for universal rules, per text for
job-specific callbacks, which repeat the same few triggers across thousands of jobs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import attrgetter
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


#: `Atom(...)` without the named tuple's Python-level `__new__`: one C call per atom.
_new = tuple.__new__
#: An event pattern's fields in one C call: attribute reads, so that any record with these
#: attributes (a model or a plain one) compiles alike.
FIELDS = attrgetter("name", "type", "context", "extra")


def atom_of(pattern: EventPattern) -> Atom:
    """The atom of one pattern."""
    return field_atom(*FIELDS(pattern))


def field_atom(name: str | None, typ: str, ctx: str | None, extra: str | None) -> Atom:
    """The atom of a pattern with these fields (kinds are literals: one shared string each)."""
    if extra == "*":
        extra = None
    elif typ == "subjob":
        extra = item_key(typ, extra)
    if ctx is None:
        return _new(Atom, (None, typ, "global", None, extra))
    if ctx == "self":
        return _new(Atom, (name, typ, "self", None, extra))
    if ctx == "parent":
        return _new(Atom, (name, typ, "parent", None, extra))
    if ctx.isdigit() and ctx.isascii():
        return _new(Atom, (name, typ, "id", int(ctx), extra))
    return _new(Atom, (name, typ, "label", ctx, extra))


class CompiledTrigger(NamedTuple):
    """A trigger ready for matching.

    `atoms[i]` is bit `1 << i`. `simple` says that any single atom makes the trigger true (a
    lone event or an any-of of events): such instances never need stored state. A named tuple
    for the same reason as `Atom`: a big rule set makes one per distinct trigger.
    """

    text: str
    atoms: tuple[Atom, ...]
    test: MaskTest
    simple: bool


def event_text(name: str | None, typ: str, ctx: str | None, extra: str | None) -> str:
    """`EventPattern.format()` from the pattern's fields."""
    if name is None:
        return typ if extra is None else f"{typ}-{extra}"
    if extra is None:
        return f"{name}-{typ}-{ctx}"
    return f"{name}-{typ}-{ctx}-{extra}"


def canonical_text(model: TriggerNode) -> str:
    """`model.format()`, read from the fields alone (a plain record formats as its model
    does); a property test holds the two equal."""
    if isinstance(model, EventPattern):
        return event_text(*FIELDS(model))
    operands = model.operands
    parts = [canonical_text(op) for op in operands]
    if type(model) is AnyOf:
        return " || ".join(parts)
    return " && ".join([f"({part})" if type(op) is AnyOf else part
                        for op, part in zip(operands, parts, strict=True)])


def compile_event(pattern: EventPattern, known: dict[str, CompiledTrigger]) -> CompiledTrigger:
    """The compiled trigger of a lone event pattern, found in or added to `known` (by
    canonical text)."""
    fields = FIELDS(pattern)
    text = event_text(*fields)
    found = known.get(text)
    if found is None:
        found = known[text] = _new(CompiledTrigger, (text, (field_atom(*fields),), _any_atom,
                                                     True))
    return found


def _any_atom(mask: int) -> bool:
    """The test of every simple trigger: any atom seen makes it true (a mask only ever holds
    the trigger's own bits), so one function serves them all instead of a closure each."""
    return mask != 0


def compile_trigger(model: TriggerNode, text: str | None = None) -> CompiledTrigger:
    """Number the distinct atoms of `model` and build its mask test; `text` is its canonical
    text when the caller has it already."""
    if isinstance(model, EventPattern):  # most rules: one atom, no state, the shared test
        fields = FIELDS(model)
        return _new(CompiledTrigger, (event_text(*fields) if text is None else text,
                                      (field_atom(*fields),), _any_atom, True))
    operands = model.operands
    for op in operands:
        if type(op) is not EventPattern:
            break
    else:
        return _compile_flat(type(model) is AnyOf, operands, text)  # type: ignore[arg-type]
    if text is None:
        text = canonical_text(model)
    bits: dict[tuple[str | None, ...], int] = {}
    atoms: list[Atom] = []
    for pattern in _events(model, []):
        key = _key(pattern)
        if key not in bits:
            bits[key] = 1 << len(atoms)
            atoms.append(atom_of(pattern))
    test = _mask_test(model, bits)
    simple = True
    for i in range(len(atoms)):
        if not test(1 << i):
            simple = False
            break
    return CompiledTrigger(text, tuple(atoms), _any_atom if simple else test, simple)


def _compile_flat(any_of: bool, operands: tuple[EventPattern, ...],
                  text: str | None) -> CompiledTrigger:
    """`compile_trigger` of an all-of or any-of of plain events (nearly every compound a site
    writes): the atoms numbered as the general path numbers them, and a test shared by every
    trigger of the same kind and atom count rather than a closure each."""
    keys = list(map(FIELDS, operands))
    if text is None:
        text = (" || " if any_of else " && ").join([event_text(*key) for key in keys])
    atoms = tuple([field_atom(*key) for key in dict.fromkeys(keys)])
    if any_of or len(atoms) == 1:
        return _new(CompiledTrigger, (text, atoms, _any_atom, True))
    return _new(CompiledTrigger, (text, atoms, all_of(len(atoms)), False))


@functools.cache
def all_of(count: int) -> MaskTest:
    """The test of an all-of of `count` distinct atoms: all their bits seen."""
    need = (1 << count) - 1
    return lambda mask: mask & need == need


def _events(node: TriggerNode, out: list[EventPattern]) -> list[EventPattern]:
    """`node.events()` as a list, read from the field dicts (as `canonical_text` does)."""
    if isinstance(node, EventPattern):
        out.append(node)
    else:
        for op in node.operands:
            _events(op, out)
    return out


def _key(pattern: EventPattern) -> tuple[str | None, ...]:
    # A plain tuple: hashing it is much cheaper than hashing the frozen model.
    key: tuple[str | None, ...] = FIELDS(pattern)
    return key


def _mask_test(node: TriggerNode, bits: dict[tuple[str | None, ...], int]) -> MaskTest:
    """A closure deciding whether the atoms in a mask make `node` true.

    Flat all-of / any-of nodes of plain events (nearly every real trigger) become one mask
    comparison; deeper nesting composes closures.
    """
    if isinstance(node, EventPattern):
        bit = bits[_key(node)]
        return lambda mask: mask & bit != 0
    operands = node.operands
    need = 0
    for op in operands:
        if type(op) is not EventPattern:
            break
        need |= bits[_key(op)]
    else:
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
        #: Compiled triggers by canonical text, which equal models share, and which is much
        #: cheaper to make than a pydantic model's hash (a walk over its fields).
        self.known: dict[str, CompiledTrigger] = {}
        self._by_text: dict[str, CompiledTrigger | TriggerError] = {}

    def for_model(self, model: TriggerNode) -> CompiledTrigger:
        if type(model) is EventPattern:
            return compile_event(model, self.known)
        text = canonical_text(model)
        found = self.known.get(text)
        if found is None:
            found = self.known[text] = compile_trigger(model, text)
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
