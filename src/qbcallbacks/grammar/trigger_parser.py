"""Parsing a trigger expression on its own (job-specific callbacks, the CLI, tests)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import cast

from lark.exceptions import LarkError, UnexpectedInput

from ..engine._base import trusted
from ..engine.triggers import (
    AllOf,
    AnyOf,
    EventPattern,
    EventType,
    normalise_context,
    normalise_name,
)
from ..errors import Diagnostic, TriggerError, make_diagnostic
from ._lark import trigger_lark
from ._trigger_build import Problem, build_trigger, diagnose_trigger

TriggerModel = EventPattern | AllOf | AnyOf
_BLANKS = " \t"


# The fast path: one full-form event and nothing else, which is most lines of a real
# callbacks.conf. The groups copy the terminals of trigger.lark (NAME, TYPE, CONTEXT, EXTRA);
# GLOBAL_TIMED takes priority over NAME there, so a name spelled globaltime/globalrepeat is
# left to the grammar. tests/test_parse_fast_path.py proves that whatever this accepts, Lark
# accepts too and builds into an equal model with equal warnings, and that it accepts every
# single full-form event the grammar produces.
_SIMPLE_EVENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"-(?P<type>(?i:globalrepeat|globaltime|global|subjob|job|work|host|time|repeat))"
    r"-(?P<context>[^\s\x00-\x1f\x7f()&|#*=-]+)"
    r"(?:-(?P<extra>\*|[^\s\x00-\x1f\x7f()&|*]+))?\Z"
)
_GLOBAL_TIMED_NAMES = frozenset({"globaltime", "globalrepeat"})


def parse_simple_event(text: str) -> tuple[EventPattern, tuple[Problem, ...]] | None:
    """Build a lone `name-type-context[-extra]` event without Lark; None if `text` is not
    one (the caller then parses it with the grammar)."""
    m = _SIMPLE_EVENT.match(text)
    if m is None:
        return None
    name, typ, ctx, extra = m.group("name", "type", "context", "extra")
    if name.lower() in _GLOBAL_TIMED_NAMES:
        return None
    typ = cast(EventType, typ.lower())  # the regex admits only the types' spellings
    problems: tuple[Problem, ...] = ()
    if typ == "job" and extra is not None:
        start = m.start("extra") - 1
        problems = (Problem(
            "QCB203",
            f"job events take no extra; '-{extra}' is ignored (write {name}-{typ}-{ctx})",
            start, start + 1 + len(extra), "warning",
        ),)
        extra = None
    model = trusted(
        EventPattern, kind="event", name=normalise_name(name), type=typ,
        context=normalise_context(ctx), extra=extra,
    )
    return model, problems


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[TriggerModel | None, tuple[Problem, ...]]:
    """Parse a stripped trigger once per distinct text; problems are offsets into `text`."""
    simple = parse_simple_event(text)
    if simple is not None:
        return simple
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


def _too_deep(text: str) -> Problem:
    return Problem("QCB107", "trigger nests parentheses too deeply", 0, max(1, len(text)))


def trigger_problems(text: str) -> tuple[TriggerModel | None, int, tuple[Problem, ...]]:
    """Parse `text` ignoring surrounding blanks; returns the model, the offset of the stripped
    text in `text`, and problems as offsets into the stripped text."""
    stripped = text.strip(_BLANKS)
    offset = len(text) - len(text.lstrip(_BLANKS)) if stripped else 0
    if "\n" in stripped or "\r" in stripped:
        cut = min(i for i in (stripped.find("\n"), stripped.find("\r")) if i >= 0)
        return None, offset, (Problem("QCB107", "a trigger is one line", cut, cut + 1),)
    model, problems = _parse_cached(stripped)
    return model, offset, problems


def problems_to_diagnostics(problems: tuple[Problem, ...], *, file: str, line: int,
                            column: int, source_line: str) -> list[Diagnostic]:
    """Place problems found in a fragment that starts at `column` (1-based) of `line`."""
    return [
        make_diagnostic(p.code, p.message, file=file, line=line, column=column + p.start,
                        end_column=column + p.end, severity=p.severity,  # type: ignore[arg-type]
                        source_line=source_line)
        for p in problems
    ]


def parse_trigger_with_warnings(text: str, *, file: str = "<trigger>", line: int = 1,
                                column: int = 1) -> tuple[TriggerModel, list[Diagnostic]]:
    """Parse one trigger; raise :class:`TriggerError` on errors, return warnings otherwise."""
    model, offset, problems = trigger_problems(text)
    diags = problems_to_diagnostics(problems, file=file, line=line, column=column + offset,
                                    source_line=text)
    if model is None:
        raise TriggerError(diags)
    return model, diags


def parse_trigger(text: str, *, file: str = "<trigger>") -> TriggerModel:
    """Parse one trigger expression into its canonical model (warnings are dropped)."""
    return parse_trigger_with_warnings(text, file=file)[0]
