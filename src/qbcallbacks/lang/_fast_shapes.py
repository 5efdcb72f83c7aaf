"""Triggers read by their shape: the events split out by one regex, the operators between them
read once per shape.

A file whose trigger texts are all different still spells them in few shapes: the same
operators and parentheses around different events (`(a && b) || c` with other names, labels
and items). One `re.split` cuts a text into its events and the pieces between them (the
skeleton). The skeleton is read once per distinct skeleton, by the compound reader of
`_fast_trigger` on a stand-in text that has the same skeleton around placeholder events, into
a plan: which operator joins which events, already flattened as the models flatten, and the
canonical text as a format string. Each event is then built straight into its model, shared
by every text of one parse that spells it alike.

What this reader takes is exactly what the compound reader takes, which the grammar is held
to by the property tests: the skeleton is read by that reader, and an event it takes is one
the regexes of both read alike (a name the grammar's GLOBAL_TIMED would take, or an extra
that draws a warning, leaves the text to the exact readers, which place the warning). The
property tests in tests/lang/test_parse_fast_path.py hold `read_shaped` to the grammar too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ..model.triggers import (
    KEYWORD_NAMES,
    TYPE_WORDS,
    AllOf,
    AnyOf,
    EventPattern,
    make_all_of,
    make_any_of,
    make_event,
)
from ._fast_rows import CompoundRow, EventRow, TriggerRow
from ._fast_trigger import EVENT_PATTERN, parse_compound_row

__all__ = ["ATOM_MEMO", "Atoms", "Plan", "atom", "read_shaped", "shape_plan"]

TriggerModel = EventPattern | AllOf | AnyOf
#: One event's model and canonical text, per spelling, for one parse.
Atoms = dict[str, tuple[EventPattern, str] | None]
#: An event by its place among the text's events, or an operator ("and"/"or") over plans.
Plan = int | tuple[str, tuple["Plan", ...]]

# The lone-event regex with its four groups, the whole event as one more group in front:
# `split` gives, per event, the piece before it, the event, then name, type, context, extra.
_SPLIT = re.compile("(" + EVENT_PATTERN + ")").split
_LONE = re.compile(EVENT_PATTERN + r"\Z").match
_STRIDE = 6
#: How many spellings of events one parse keeps at most.
ATOM_MEMO = 1 << 16
_GLOBAL_TIMED_NAMES = frozenset({"globaltime", "globalrepeat"})
#: Every ASCII spelling of the keyword contexts, to the keyword: what `normalise_context`
#: gives, found with one look-up.
_CONTEXT_CASES = {"".join(c.upper() if bit >> i & 1 else c for i, c in enumerate(word)): word
                  for word in ("self", "parent") for bit in range(1 << len(word))}
#: Types whose extra can draw a warning (or, for a job, is dropped with one): an event of
#: these with an extra other than '*' is left to the exact readers. A subjob extra that is a
#: number draws none and is read here.
_WARNED_TYPES = frozenset({"job", "time", "repeat", "globaltime", "globalrepeat"})


def atom(text: str, name: str, typ: str, ctx: str,
         extra: str | None) -> tuple[EventPattern, str] | None:
    """The model and canonical text of the event `text` the lone-event regex split into
    `name`, `typ`, `ctx`, `extra`; None when the exact readers must take it."""
    if name in KEYWORD_NAMES:  # a keyword as the models spell it: most events
        canonical_name = name
    else:
        low = name.lower()  # the regex admits only ASCII names
        if low in _GLOBAL_TIMED_NAMES:
            return None  # the grammar reads `globaltime-...` as the short global form
        canonical_name = KEYWORD_NAMES.get(low, name)
    canonical_type = TYPE_WORDS[typ] if typ in TYPE_WORDS else TYPE_WORDS[typ.lower()]
    canonical_ctx = _CONTEXT_CASES[ctx] if ctx in _CONTEXT_CASES else ctx  # noqa: SIM401 - no call
    if extra is not None and extra != "*" and (canonical_type in _WARNED_TYPES or (
            canonical_type == "subjob" and not (extra.isdigit() and extra.isascii()))):
        return None  # a warning to place, or (for a job) an extra dropped with one
    if extra == "*" and canonical_type == "job":
        return None
    model = make_event("event", canonical_name, canonical_type, canonical_ctx, extra)
    if canonical_name == name and canonical_type == typ and canonical_ctx == ctx:
        return model, text
    return model, model.format()


#: What may touch an event in a skeleton: a blank, a parenthesis or an operator's character.
#: Any other character next to an event could join it (`a-job-self-*x`, `a-work-self-*-b`),
#: where the stand-in's placeholder, which ends differently, would join it otherwise.
_TOUCH = frozenset(" \t()&|")


def _separated(skeleton: tuple[str, ...]) -> bool:
    """Whether every event of `skeleton` is set apart by a character that joins no event
    (the pieces between events are not empty; the text's own ends may be)."""
    last = len(skeleton) - 1
    for i, piece in enumerate(skeleton):
        if not piece:
            if 0 < i < last:
                return False
            continue
        if (i > 0 and piece[0] not in _TOUCH) or (i < last and piece[-1] not in _TOUCH):
            return False
    return True


@lru_cache(maxsize=1024)
def shape_plan(skeleton: tuple[str, ...],
               ) -> tuple[Callable[[list[tuple[EventPattern, str]]], TriggerModel], str] | None:
    """What makes the model from the events' models, and the canonical format string, for
    texts whose pieces between events are `skeleton` (one more than the events); None when
    the compound reader rejects that skeleton.

    The stand-in text puts a placeholder event `_<i>-job-self` where event i stands: any
    event the split takes ends where no character of the skeleton could continue it, and so
    does the placeholder, so the compound reader splits both texts into the same tokens."""
    if not _separated(skeleton):
        return None
    stand_in = "".join(piece + (f"_{i}-job-self" if i < len(skeleton) - 1 else "")
                       for i, piece in enumerate(skeleton))
    found = parse_compound_row(stand_in)
    if found is None or found[1]:
        return None
    leaves: list[int] = []
    plan = _plan(found[0], leaves)
    if leaves != list(range(len(skeleton) - 1)):
        return None  # the skeleton holds an event of its own (a short global form)
    return _builder(plan), _template(plan)


def _plan(row: TriggerRow, leaves: list[int]) -> Plan:
    """The plan of the stand-in's row; `leaves` gets each event's place, in order. A short
    global form in the skeleton gives a leaf that is no placeholder: -1."""
    if type(row) is EventRow:
        name = row.name
        leaves.append(int(name[1:]) if name is not None and name[:1] == "_" else -1)
        return leaves[-1]
    assert type(row) is CompoundRow
    return row.kind, tuple(_plan(op, leaves) for op in row.operands)


def _template(plan: Plan) -> str:
    """The canonical text of a plan with `{i[1]}` where event i's text goes (as `format`
    writes it), for `str.format` over the events' (model, text) pairs."""
    if isinstance(plan, int):
        return f"{{{plan}[1]}}"
    kind, ops = plan
    if kind == "or":
        return " || ".join(_template(op) for op in ops)
    return " && ".join(f"({_template(op)})" if not isinstance(op, int) and op[0] == "or"
                       else _template(op) for op in ops)


def _builder(plan: Plan) -> Callable[[list[tuple[EventPattern, str]]], TriggerModel]:
    """A function making the model of `plan` from the events' (model, text): one expression of
    constructor calls, compiled once per shape (the plan holds only ints and "and"/"or")."""
    def expression(node: Plan) -> str:
        if isinstance(node, int):
            return f"e[{node}][0]"
        kind, ops = node
        inner = ", ".join(expression(op) for op in ops)
        return (f"_all(({inner},), 'and')" if kind == "and" else f"_any(({inner},), 'or')")

    namespace: dict[str, object] = {"_all": make_all_of, "_any": make_any_of}
    exec(f"def build(e):\n    return {expression(plan)}\n", namespace)
    return namespace["build"]  # type: ignore[return-value]


def read_shaped(text: str, atoms: Atoms) -> tuple[TriggerModel, str] | None:
    """The model and canonical text of the stripped trigger `text`, no warnings; None when
    the exact readers must take it (a warning to place, a shape the compound reader does not
    take, or text no trigger is). `atoms` keeps the events read so far in one parse."""
    m = _LONE(text)
    if m is not None:
        return atom(text, *m.groups())
    parts = _SPLIT(text)
    if len(parts) == 1:
        return None
    found: list[tuple[EventPattern, str]] = []
    add = found.append
    for at in range(1, len(parts) - 1, _STRIDE):
        spelled = parts[at]
        if spelled in atoms:
            event = atoms[spelled]
        else:
            event = atom(*parts[at:at + 5])
            if len(atoms) < ATOM_MEMO:
                atoms[spelled] = event
        if event is None:
            return None
        add(event)
    shape = shape_plan(tuple(parts[::_STRIDE]))
    if shape is None:
        return None
    return shape[0](found), shape[1].format(*found)
