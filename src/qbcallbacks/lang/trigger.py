"""Parsing a trigger expression on its own (job-specific callbacks, the CLI, tests).

Each distinct text is read once: by the hand readers of `_fast_trigger` when it is one of the
shapes they know (nearly every real trigger), else by the Lark grammar, which also explains
what is wrong with a bad one.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import Diagnostic, TriggerError, make_diagnostic
from ..model.limits import Limits, default_limits
from ..model.triggers import AllOf, AnyOf, EventPattern
from ._fast_shapes import shape_plan
from ._fast_trigger import parse_compound_trigger, parse_simple_event
from ._lark import trigger_lark
from ._trigger_build import Problem, build_trigger, diagnose_trigger

TriggerModel = EventPattern | AllOf | AnyOf
_BLANKS = " \t"


@lru_cache(maxsize=4096)
def cached_trigger(text: str) -> tuple[TriggerModel | None, tuple[Problem, ...]]:
    """Parse a stripped trigger once per distinct text; problems are offsets into `text`.
    The limits are the caller's to check first (:func:`trigger_problems` does)."""
    simple = parse_simple_event(text)
    if simple is not None:
        return simple
    compound = parse_compound_trigger(text)
    if compound is not None:
        return compound
    from lark.exceptions import LarkError, UnexpectedInput  # only text the readers left

    found: list[Problem] = []
    try:
        tree = trigger_lark().parse(text)
    except (UnexpectedInput, LarkError) as exc:
        pos = getattr(exc, "pos_in_stream", None)
        return None, (diagnose_trigger(text, pos if isinstance(pos, int) else len(text)),)
    except RecursionError:
        return None, (_too_deep(text),)
    try:
        return build_trigger(tree, found.append), tuple(found)
    except RecursionError:
        return None, (_too_deep(text),)


def clear_cache() -> None:
    """Forget every parsed trigger text, so that the next parse of each is a cold one (what a
    process that reads a file once pays; the benchmarks measure it)."""
    cached_trigger.cache_clear()
    shape_plan.cache_clear()


def _too_deep(text: str) -> Problem:
    return Problem("QCB005", "trigger nests parentheses too deeply", 0, max(1, len(text)))


_PARENS = re.compile(r"[()]")


def too_deep(text: str, limit: int) -> Problem | None:
    """The first parenthesis that opens more than `limit` groups at once, or None.

    Counted before any parsing, so the answer is the same whatever the call stack."""
    if text.count("(") <= limit:
        return None
    depth = 0
    for m in _PARENS.finditer(text):
        if m.group() == ")":
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > limit:
            at = m.start()
            return Problem("QCB005", f"parentheses nest more than {limit} deep; write the "
                           "trigger flatter (or raise QBCALLBACKS_MAX_TRIGGER_DEPTH)",
                           at, at + 1)
    return None


def trigger_problems(text: str, limits: Limits | None = None,
                     ) -> tuple[TriggerModel | None, int, tuple[Problem, ...]]:
    """Parse `text` ignoring surrounding blanks; returns the model, the offset of the stripped
    text in `text`, and problems as offsets into the stripped text.

    The length and nesting limits are checked before any parser sees the text."""
    limits = default_limits() if limits is None else limits
    stripped = text.strip(_BLANKS)
    # Only blanks come before the first character of `stripped`: its first match is the offset.
    offset = text.find(stripped[0]) if stripped else 0
    if len(stripped) > limits.max_line_length:
        cut = limits.max_line_length
        return None, offset, (Problem(
            "QCB006", f"trigger is {len(stripped)} characters long, over the limit of "
            f"{limits.max_line_length}", cut, cut + 1),)
    if "\n" in stripped or "\r" in stripped:
        cut = min(i for i in (stripped.find("\n"), stripped.find("\r")) if i >= 0)
        return None, offset, (Problem("QCB107", "a trigger is one line", cut, cut + 1),)
    if "(" in stripped:
        deep = too_deep(stripped, limits.max_trigger_depth)
        if deep is not None:
            return None, offset, (deep,)
    model, problems = cached_trigger(stripped)
    return model, offset, problems


#: Lines longer than twice this are not echoed under their diagnostics.
_SHOWN = 4096


def problems_to_diagnostics(problems: tuple[Problem, ...], *, file: str, line: int,
                            column: int, source_line: str | None) -> list[Diagnostic]:
    """Place problems found in a fragment that starts at `column` (1-based) of `line`."""
    return [
        make_diagnostic(p.code, p.message, file=file, line=line, column=column + p.start,
                        end_column=column + p.end, severity=p.severity,  # type: ignore[arg-type]
                        source_line=source_line)
        for p in problems
    ]


def parse_trigger_with_warnings(text: str, *, file: str = "<trigger>", line: int = 1,
                                column: int = 1, limits: Limits | None = None,
                                ) -> tuple[TriggerModel, list[Diagnostic]]:
    """Parse one trigger; raise :class:`TriggerError` on errors, return warnings otherwise."""
    model, offset, problems = trigger_problems(text, limits)
    shown = text if len(text) <= 2 * _SHOWN else None  # a huge line is not echoed
    diags = problems_to_diagnostics(problems, file=file, line=line, column=column + offset,
                                    source_line=shown)
    if model is None:
        raise TriggerError(diags)
    return model, diags


def parse_trigger(text: str, *, file: str = "<trigger>",
                  limits: Limits | None = None) -> TriggerModel:
    """Parse one trigger expression into its canonical model (warnings are dropped)."""
    return parse_trigger_with_warnings(text, file=file, limits=limits)[0]
