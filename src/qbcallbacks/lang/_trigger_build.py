"""From trigger parse trees to models, and from trigger syntax errors to plain words.

The grammar decides what is valid. When it rejects a trigger, `diagnose_trigger` re-reads the
text with a small hand-written scanner only to say *why* in the terms an administrator uses
(unknown type, missing context, dangling operator, ...) and where; if the scanner finds nothing
more specific, the grammar's own position is reported as a plain syntax error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model.triggers import (
    CONTEXT_RE,
    EVENT_TYPES,
    EXTRA_RE,
    NAME_RE,
    REPEAT_TYPES,
    TIME_TYPES,
    AllOf,
    AnyOf,
    EventPattern,
    make_event,
    normalise_context,
    normalise_name,
    time_extra,
)

TriggerModel = EventPattern | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding inside a piece of text: 0-based start and end offsets into that text."""

    code: str
    message: str
    start: int
    end: int
    severity: str = "error"


WarnSink = Callable[[Problem], None]

if TYPE_CHECKING:  # trees exist only once lark is loaded, which imports it then
    from lark import Token, Tree


def build_trigger(tree: Tree[Token] | Token, warn: WarnSink, base: int = 0) -> TriggerModel:
    """Build the model of a `trigger` subtree; `base` is subtracted from token offsets."""
    from lark import Token, Tree

    if isinstance(tree, Token):  # pragma: no cover - the grammar never yields a bare token here
        raise TypeError(f"unexpected token {tree!r}")
    data = tree.data
    if data == "event":
        return _build_event(tree.children, warn, base)
    if data == "global_event":
        toks = [c for c in tree.children if isinstance(c, Token)]
        extra = toks[2].value if len(toks) > 2 else None
        if extra is not None:
            for problem in extra_problems(toks[0].value.lower(), extra,
                                          (toks[2].start_pos or 0) - base):
                warn(problem)
        return make_event("event", None, toks[0].value.lower(), None, extra)
    if data == "primary":  # ( disjunction )
        return build_trigger(tree.children[1], warn, base)
    parts = [build_trigger(c, warn, base) for c in tree.children if isinstance(c, Tree)]
    if data == "conjunction":
        return AllOf(operands=tuple(parts))
    if data == "disjunction":
        return AnyOf(operands=tuple(parts))
    raise TypeError(f"unexpected rule {data!r}")  # pragma: no cover


def _build_event(children: list[Tree[Token] | Token], warn: WarnSink, base: int) -> EventPattern:
    from lark import Token

    toks = [c for c in children if isinstance(c, Token) and c.type != "DASH"]
    name, typ, ctx = toks[0].value, toks[1].value.lower(), toks[2].value
    extra: str | None = toks[3].value if len(toks) > 3 else None
    if typ == "job" and extra is not None:
        tok = toks[3]
        start = (tok.start_pos or 0) - base - 1
        warn(Problem(
            "QCB203",
            f"job events take no extra; '-{extra}' is ignored (write {name}-{typ}-{ctx})",
            start, start + 1 + len(extra), "warning",
        ))
        extra = None
    elif extra is not None:
        for problem in extra_problems(typ, extra, (toks[3].start_pos or 0) - base):
            warn(problem)
    return make_event("event", normalise_name(name), typ, normalise_context(ctx), extra)


def extra_problems(typ: str, extra: str, start: int) -> list[Problem]:
    """Warnings for an extra no event can ever carry, so the atom can never fire: a time
    extra no instant matches, a subjob extra that is not a subjob id. `start` is the offset
    of the extra; the fast paths call this too, so every parser warns alike."""
    if extra == "*":
        return []
    end = start + len(extra)
    if typ in TIME_TYPES:
        why = time_extra(typ, extra)
        if isinstance(why, str):
            code = "QCB132" if typ in REPEAT_TYPES else "QCB131"
            return [Problem(code, f"this trigger can never fire: {why}", start, end, "warning")]
    elif typ == "subjob" and not (extra.isdigit() and extra.isascii()):
        return [Problem("QCB133", f"this trigger can never fire: a subjob extra is a subjob id "
                        f"(a number), not {extra!r}", start, end, "warning")]
    return []


# ---------------------------------------------------------------------------------------------
# Explaining syntax errors

def shorten(text: str, limit: int = 40) -> str:
    """`repr` of user text for a message, cut in the middle when long."""
    if len(text) <= limit:
        return repr(text)
    half = limit // 2
    return repr(text[:half] + "…" + text[-half:])


_PIECE_RE = re.compile(r"\(|\)|&&|\|\||&|\||[^\s()&|]+")
_WORD_OPS = {"and": "&&", "or": "||"}


def _is_op(piece: str) -> bool:
    return piece in ("&&", "||") or piece.lower() in _WORD_OPS


def diagnose_trigger(text: str, fallback: int) -> Problem:
    """Explain why `text` (a whole trigger, no trailing comment) is not a valid trigger.

    `fallback` is the 0-based offset where the grammar stopped, used when no rule below applies.
    """
    if not text.strip():
        return Problem("QCB102", "empty trigger: write an event such as done-job-self after '='",
                       0, max(1, len(text)))
    pieces = [(m.group(), m.start()) for m in _PIECE_RE.finditer(text)]
    problem = _check_parens(pieces) or _check_sequence(pieces) or _check_word_ops(text, pieces)
    if problem is not None:
        return problem
    for piece, at in pieces:
        if piece not in "()" and not _is_op(piece):
            found = check_event_word(piece, at)
            if found is not None:
                return found
    at = min(max(fallback, 0), max(len(text) - 1, 0))
    word = _PIECE_RE.search(text, at)
    shown = word.group() if word else text[at:at + 1]
    end = at + max(1, len(shown))
    return Problem("QCB107", f"syntax error in trigger at {shorten(shown)}", at, end)


def _check_parens(pieces: list[tuple[str, int]]) -> Problem | None:
    opened: list[int] = []
    for piece, at in pieces:
        if piece == "(":
            opened.append(at)
        elif piece == ")":
            if not opened:
                return Problem("QCB105", "unbalanced parenthesis: ')' has no matching '('",
                               at, at + 1)
            opened.pop()
    if opened:
        return Problem("QCB105", "unbalanced parenthesis: '(' is never closed",
                       opened[0], opened[0] + 1)
    return None


def _check_sequence(pieces: list[tuple[str, int]]) -> Problem | None:
    want_operand = True
    last_op: tuple[str, int] | None = None
    for piece, at in pieces:
        end = at + len(piece)
        if piece in ("&", "|"):
            return Problem("QCB107", f"single '{piece}': the operator is '{piece * 2}'", at, end)
        if _is_op(piece):
            if want_operand:
                where = "before it" if last_op is None else f"between it and '{last_op[0]}'"
                return Problem("QCB106", f"dangling operator '{piece}': no event {where}",
                               at, end)
            want_operand, last_op = True, (piece, at)
        elif piece == "(":
            if not want_operand:
                return Problem("QCB107", "missing '&&' or '||' before '('", at, end)
        elif piece == ")":
            if want_operand and last_op is not None:
                op, op_at = last_op
                return Problem("QCB106", f"dangling operator '{op}': no event after it",
                               op_at, op_at + len(op))
            if want_operand:
                return Problem("QCB107", "empty parentheses", at, end)
        else:
            if not want_operand:
                return Problem("QCB107", f"missing '&&' or '||' before {shorten(piece)}", at, end)
            want_operand, last_op = False, None
    if want_operand and last_op is not None:
        op, op_at = last_op
        return Problem("QCB106", f"dangling operator '{op}': no event after it",
                       op_at, op_at + len(op))
    return None


def _check_word_ops(text: str, pieces: list[tuple[str, int]]) -> Problem | None:
    for piece, at in pieces:
        if piece.lower() in _WORD_OPS:
            end = at + len(piece)
            if text[at - 1:at] not in (" ", "\t") or text[end:end + 1] not in (" ", "\t"):
                return Problem("QCB107", f"the word operator '{piece}' needs a blank on each side"
                               f" (or write '{_WORD_OPS[piece.lower()]}')", at, end)
    return None


def check_event_word(word: str, at: int = 0) -> Problem | None:
    """Why one space-free word is not a valid event, or None if it is one."""
    parts = word.split("-", 3)
    head = parts[0]
    if head.lower() in ("globaltime", "globalrepeat"):
        if len(parts) == 1 or not parts[1]:
            return Problem("QCB107", f"'{head}' needs a Qube time: {head.lower()}-<time>",
                           at, at + len(word))
        return _check_extra(word[len(head) + 1:], at + len(head) + 1)
    if head.lower() == "global" and len(parts) == 1:
        return None
    if head.lower() == "global" and len(parts) == 2 and parts[1].lower() not in EVENT_TYPES:
        return Problem("QCB130", f"'global' takes no extra: write global alone, not "
                       f"{shorten(word)}", at + len(head), at + len(word))
    if not head or not NAME_RE.match(head):
        return Problem("QCB108", f"invalid event name {shorten(head)}: a name is letters, digits "
                       "and '_', not starting with a digit", at, at + max(1, len(head)))
    if len(parts) == 1:
        return Problem("QCB107", f"{shorten(word)} is not an event: write name-type-context, "
                       f"e.g. done-job-self", at, at + len(word))
    typ = parts[1]
    t_at = at + len(head) + 1
    if typ.lower() not in EVENT_TYPES:
        import difflib  # only for a misspelt trigger

        close = difflib.get_close_matches(typ.lower(), EVENT_TYPES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; types are {', '.join(EVENT_TYPES)}"
        return Problem("QCB103", f"unknown event type {shorten(typ)}{hint}",
                       t_at, t_at + max(1, len(typ)))
    c_at = t_at + len(typ) + 1
    if len(parts) == 2 or not parts[2]:
        return Problem("QCB104", f"event {shorten(word)} has no context: add -self, -parent, "
                       "a label or a job id after the type", at, at + len(word))
    ctx = parts[2]
    if not CONTEXT_RE.match(ctx):
        why = ("'*' is allowed only as a whole extra, not as a context" if "*" in ctx
               else f"context {shorten(ctx)} holds a character a context cannot hold")
        return Problem("QCB107", why, c_at, c_at + len(ctx))
    if len(parts) == 4:
        return _check_extra(parts[3], c_at + len(ctx) + 1)
    return None


def _check_extra(extra: str, at: int) -> Problem | None:
    if EXTRA_RE.match(extra):
        return None
    if not extra:
        return Problem("QCB107", "empty extra after the last dash", at - 1, at)
    why = ("'*' is allowed only as a whole extra" if "*" in extra
           else f"extra {shorten(extra)} holds a character an extra cannot hold")
    return Problem("QCB107", why, at, at + len(extra))
