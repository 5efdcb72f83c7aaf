"""Hand readers of triggers: the same models and warnings as the grammar, without Lark.

A config file repeats a few shapes of trigger thousands of times; reading them with regular
expressions and a small precedence parser instead of a Lark parse is what makes a 100k-line
file load in about a second. Each reader returns None for any text it is not sure of, and the
caller then parses that text with the grammar (which also explains errors). The readers build
plain rows (`_fast_rows`); the functions that hand back models make them from those rows,
and the loader keeps the rows until it makes its rules. The property tests
in tests/lang/test_parse_fast_path.py draw text from the grammar (`from_lark`), from models
and from hostile near misses, and hold each reader to exactly what the grammar builds.
"""

from __future__ import annotations

import re
from functools import cache

from ..model.limits import HARD_MAX_TRIGGER_DEPTH
from ..model.triggers import (
    KEYWORD_NAMES,
    TYPE_WORDS,
    EventPattern,
    normalise_context,
    normalise_name,
)
from ._fast_rows import CompoundRow, EventRow, TriggerModel, TriggerRow, event_model, row_model
from ._trigger_build import Problem, extra_problems

__all__ = ["EVENT_PATTERN", "MAX_FAST_DEPTH", "CompoundRow", "EventRow", "TriggerModel",
           "TriggerRow", "event_entry", "match_simple_event", "parse_compound_row",
           "parse_compound_trigger", "parse_simple_event", "simple_event", "simple_event_row"]


# The fast path: one full-form event and nothing else, which is most lines of a real
# callbacks.conf. The groups copy the terminals of trigger.lark (NAME, TYPE, CONTEXT, EXTRA);
# GLOBAL_TIMED takes priority over NAME there, so a name spelled globaltime/globalrepeat is
# left to the grammar. tests/lang/test_parse_fast_path.py proves that whatever this accepts, Lark
# accepts too and builds into an equal model with equal warnings, and that it accepts every
# single full-form event the grammar produces.
#: The lone event's regex without its end, for readers that match it inside a longer text;
#: its groups are name, type, context and extra, in that order.
EVENT_PATTERN = (
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"-(?P<type>(?ai:globalrepeat|globaltime|global|subjob|job|work|host|time|repeat))"
    r"-(?P<context>[^\s\x00-\x1f\x7f()&|#*=-]+)"
    r"(?:-(?P<extra>\*|[^\s\x00-\x1f\x7f()&|*]+))?"
)
_SIMPLE_EVENT = re.compile(EVENT_PATTERN + r"\Z")
_GLOBAL_TIMED_NAMES = frozenset({"globaltime", "globalrepeat"})
#: The keyword contexts as the models spell them, each to itself: most contexts of a file,
#: found with one look-up rather than a call of `normalise_context`.
_CANONICAL_CONTEXTS = {"self": "self", "parent": "parent"}


def parse_simple_event(text: str) -> tuple[EventPattern, tuple[Problem, ...]] | None:
    """Build a lone `name-type-context[-extra]` event without Lark; None if `text` is not
    one (the caller then parses it with the grammar)."""
    m = _SIMPLE_EVENT.match(text)
    found = None if m is None else simple_event(m)
    return None if found is None else (found[0], found[1])


#: The `match` of the lone-event regex, for readers that build from its groups themselves.
match_simple_event = _SIMPLE_EVENT.match


_new_tuple = tuple.__new__


def simple_event(m: re.Match[str]) -> tuple[EventPattern, tuple[Problem, ...], str] | None:
    """The event a match of the lone-event regex spells, its warnings and its canonical text;
    None for a name spelled globaltime/globalrepeat (the grammar's GLOBAL_TIMED takes it)."""
    found = simple_event_row(m)
    return None if found is None else (event_model(found[0]), found[1], found[2])


def simple_event_row(m: re.Match[str]) -> tuple[EventRow, tuple[Problem, ...], str] | None:
    """:func:`simple_event` with the event as its row."""
    name, typ, ctx, extra = m.groups()  # name, type, context, extra, in that order
    return event_entry(name, typ, ctx, extra, m.string)


def event_entry(name: str, typ: str, ctx: str, extra: str | None,
                text: str) -> tuple[EventRow, tuple[Problem, ...], str] | None:
    """The row, warnings and canonical text of the lone event `text`, from what the lone-event
    regex's groups took of it (an absent extra None or empty); None for a name spelled
    globaltime/globalrepeat (the grammar's GLOBAL_TIMED takes it)."""
    low = name.lower()
    if low in _GLOBAL_TIMED_NAMES:
        return None
    canonical_name = KEYWORD_NAMES.get(low, name)
    canonical_type = TYPE_WORDS.get(typ) or TYPE_WORDS[typ.lower()]
    canonical_ctx = _CANONICAL_CONTEXTS.get(ctx) or normalise_context(ctx)
    if not extra:
        row = _new_tuple(EventRow, (canonical_name, canonical_type, canonical_ctx, None))
        if canonical_name == name and canonical_type == typ and canonical_ctx == ctx:
            return row, (), text  # the text is canonical already
        return row, (), row.format()
    found: list[Problem] = []
    kept = _extra(name, canonical_type, ctx, extra, len(name) + len(typ) + len(ctx) + 2, found)
    row = _new_tuple(EventRow, (canonical_name, canonical_type, canonical_ctx, kept))
    # The text is canonical already unless a keyword changed case or a job's extra was dropped.
    same = (canonical_name == name and canonical_type == typ and canonical_ctx == ctx
            and kept is not None)
    return row, tuple(found), text if same else row.format()


def _extra(name: str, typ: str, ctx: str, extra: str, dash: int,
           problems: list[Problem]) -> str | None:
    """The extra a full-form event the grammar's terminals matched keeps (`typ` canonical,
    `dash` the offset of the dash before `extra`), its warnings added. Mirrors
    `_trigger_build._build_event`: a job event drops its extra."""
    if typ == "job":
        problems.append(Problem(
            "QCB203",
            f"job events take no extra; '-{extra}' is ignored (write {name}-{typ}-{ctx})",
            dash, dash + 1 + len(extra), "warning",
        ))
        return None
    problems.extend(extra_problems(typ, extra, dash + 1))
    return extra


# The compound fast path: events joined by operators and parentheses, read left to right by
# a state machine that mirrors Lark's contextual lexer (it only tries the terminals the parser
# can take next) and an explicit stack for parentheses instead of recursion.
#
# An operand is `(` (LPAR: the parenthesis and the blanks after it) or one event. The event
# alternatives follow the terminals' priorities: GLOBAL_TIMED and GLOBAL (priority 2) before
# NAME. Once `globaltime-`/`globalrepeat-` matched, only EXTRA may follow; if it does not, the
# NAME alternative cannot match either (TYPE cannot start where EXTRA cannot), so the order of
# the alternatives never lets a name spelled globaltime/globalrepeat through.
@cache
def _compound_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The operand and the after-operand patterns, compiled when a first compound trigger is
    read rather than at import (a clean `check` of simple triggers never needs them).

    After an operand comes AND, OR (symbols with optional blanks, words with required blanks)
    or RPAR (blanks before the parenthesis). No character that ends a terminal of an event
    (blank, `&`, `|`, `)`) can continue it, so the greedy event match is the lexer's token
    split."""
    operand = re.compile(
        r"(?P<timed>(?ai:global(?:time|repeat)))-(?P<gextra>\*|[^\s\x00-\x1f\x7f()&|*]+)"
        r"|(?P<global>(?ai:global))(?![A-Za-z0-9_-])"
        r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
        r"-(?P<type>(?ai:globalrepeat|globaltime|global|subjob|job|work|host|time|repeat))"
        r"-(?P<context>[^\s\x00-\x1f\x7f()&|#*=-]+)"
        r"(?:-(?P<extra>\*|[^\s\x00-\x1f\x7f()&|*]+))?"
        r"|(?P<lpar>\([ \t]*)"
    )
    after = re.compile(
        r"[ \t]*(?:(?P<and>&&)|(?P<or>\|\|))[ \t]*"
        r"|[ \t]+(?:(?P<wand>(?ai:and))|(?P<wor>(?ai:or)))[ \t]+"
        r"|[ \t]*(?P<rpar>\))"
    )
    return operand, after


#: Parentheses nested deeper than this are left to Lark. No accepted trigger is deeper (the
#: depth limit is checked first and never exceeds it), so Lark only sees shallow text.
MAX_FAST_DEPTH = HARD_MAX_TRIGGER_DEPTH


def _joined(kind: str, parts: list[TriggerRow]) -> TriggerRow:
    """`parts` joined by one operator, flattened as the validated models flatten them."""
    if len(parts) == 1:
        return parts[0]
    ops: list[TriggerRow] = []
    for part in parts:
        if type(part) is CompoundRow and part.kind == kind:
            ops.extend(part.operands)
        else:
            ops.append(part)
    return _new_tuple(CompoundRow, (kind, tuple(ops)))


def _close(ors: list[TriggerRow], ands: list[TriggerRow]) -> TriggerRow:
    """The row of one disjunction: `ors` are its finished conjunctions, `ands` the last."""
    last = _joined("and", ands)
    if not ors:
        return last
    ors.append(last)
    return _joined("or", ors)


def _operand_event(m: re.Match[str], problems: list[Problem]) -> EventRow:
    """The event an operand match of `_compound_patterns` spells (its warnings added)."""
    kind = m.lastgroup
    if kind == "context" or kind == "extra":
        name, typ, ctx, extra = m.group("name", "type", "context", "extra")
        typ = TYPE_WORDS[typ.lower()]  # the regexes admit only the types' spellings
        if extra is not None:
            extra = _extra(name, typ, ctx, extra, m.start("extra") - 1, problems)
        return _new_tuple(EventRow, (normalise_name(name), typ, normalise_context(ctx), extra))
    if kind == "gextra":
        problems.extend(extra_problems(m.group("timed").lower(), m.group("gextra"),
                                       m.start("gextra")))
        return _new_tuple(EventRow, (None, TYPE_WORDS[m.group("timed").lower()], None,
                                     m.group("gextra")))
    return _new_tuple(EventRow, (None, "global", None, None))  # GLOBAL


def parse_compound_trigger(text: str) -> tuple[TriggerModel, tuple[Problem, ...]] | None:
    """Build any trigger of events, operators and parentheses without Lark, with the model and
    the warnings `build_trigger` gives; None if `text` is not one the grammar surely accepts
    (the caller then parses it with the grammar, which also explains errors)."""
    found = parse_compound_row(text)
    return None if found is None else (row_model(found[0]), found[1])


def parse_compound_row(text: str) -> tuple[TriggerRow, tuple[Problem, ...]] | None:
    """:func:`parse_compound_trigger` with the trigger as its row."""
    operand_re, after_re = _compound_patterns()
    operand, after = operand_re.match, after_re.match
    end = len(text)
    pos = 0
    problems: list[Problem] = []
    # The open groups: each holds the finished conjunctions of its disjunction (`ors`) and the
    # operands of its current conjunction (`ands`).
    stack: list[tuple[list[TriggerRow], list[TriggerRow]]] = []
    ors: list[TriggerRow] = []
    ands: list[TriggerRow] = []
    while True:
        m = operand(text, pos)
        if m is None:
            return None
        pos = m.end()
        kind = m.lastgroup
        if kind == "lpar":
            if len(stack) >= MAX_FAST_DEPTH:
                return None
            stack.append((ors, ands))
            ors, ands = [], []
            continue
        ands.append(_operand_event(m, problems))
        # Operators and closing parentheses until the next operand.
        while True:
            if pos == end:
                if stack:
                    return None
                return _close(ors, ands), tuple(problems)
            m = after(text, pos)
            if m is None:
                return None
            pos = m.end()
            kind = m.lastgroup
            if kind == "rpar":
                if not stack:
                    return None
                group = _close(ors, ands)
                ors, ands = stack.pop()
                ands.append(group)
                continue
            if kind == "or" or kind == "wor":
                ors.append(_joined("and", ands))
                ands = []
            break
