"""What each fuzz target checks for one input; shared by the atheris targets and the
regression tests (tests/lang/test_fuzz_regressions.py replays saved findings through these).

A finding is any exception that is not rooted at QbCallbacksError, or a failed assertion
(a disagreement between two ways of reading the same text). Time and memory are bounded by
the runner (libFuzzer's -timeout and -rss_limit_mb).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable

from lark.exceptions import LarkError

from qbcallbacks._records import to_json
from qbcallbacks.config.qbconf import parse_qbconf
from qbcallbacks.errors import QbCallbacksError
from qbcallbacks.lang import parse_config, parse_qcb, parse_trigger
from qbcallbacks.lang._fast_trigger import (
    MAX_FAST_DEPTH,
    parse_compound_trigger,
    parse_simple_event,
)
from qbcallbacks.lang._lark import trigger_lark
from qbcallbacks.lang._trigger_build import Problem, build_trigger
from qbcallbacks.lang.source import decode_source
from qbcallbacks.lang.trigger import TriggerModel, too_deep
from qbcallbacks.model.limits import Limits
from qbcallbacks.stream import read_events

#: Fuzz inputs longer than this are cut: the limits reject longer lines before parsing, and
#: short inputs let the fuzzer explore more per second.
MAX_INPUT = 4096
_LIMITS = Limits()


def _text(data: bytes) -> str:
    return data[:MAX_INPUT].decode("utf-8", errors="replace")


def check_trigger(data: bytes) -> None:
    """Parse a trigger; an accepted one formats back to itself and dumps to JSON."""
    text = _text(data)
    try:
        model = parse_trigger(text)
    except QbCallbacksError as exc:
        assert str(exc)
        return
    assert parse_trigger(model.format()) == model, f"format is not a fixed point: {text!r}"
    json.dumps(to_json(model))


def check_config(data: bytes) -> None:
    """Decode and parse a callbacks.conf; a clean one formats to a fixed point."""
    try:
        text = decode_source(data[: 4 * MAX_INPUT], "fuzz.conf")
    except QbCallbacksError:
        return
    parsed = parse_config(text, "fuzz.conf")
    for d in parsed.diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.end_column >= d.column, d
        d.render()
    assert (parsed.document is None) == (not parsed.ok)
    if parsed.document is not None:
        once = parsed.document.format()
        again = parse_config(once, "fuzz.conf").document
        assert again is not None and again.format() == once, f"not a fixed point: {text!r}"


def check_qcb(data: bytes) -> None:
    """Decode and parse a `.qcb` program; a clean one formats to a fixed point."""
    try:
        text = decode_source(data[: 4 * MAX_INPUT], "fuzz.qcb")
    except QbCallbacksError:
        return
    parsed = parse_qcb(text, "fuzz.qcb")
    assert (parsed.program is None) == (not parsed.ok)
    if parsed.program is not None:
        once = parsed.program.format()
        again = parse_qcb(once, "fuzz.qcb").program
        assert again is not None and again.format() == once, f"not a fixed point: {text!r}"


def check_events(data: bytes) -> None:
    """Read an event stream line by line; every line is an event or a bad line."""
    lines = io.BytesIO(data[: 4 * MAX_INPUT]).readlines()
    steps = list(read_events(lines))
    assert len(steps) <= len(lines)


def check_qbconf(data: bytes) -> None:
    """Parse qb.conf text and read every setting the project uses."""
    conf = parse_qbconf(data[: 4 * MAX_INPUT].decode("utf-8", errors="replace"), "qb.conf")
    for name in ("mail_host", "mail_port", "mail_domain"):
        with contextlib.suppress(QbCallbacksError):
            getattr(conf, name)
    with contextlib.suppress(QbCallbacksError):
        conf.callback_path(env={})


def _lark(text: str) -> tuple[TriggerModel, tuple[Problem, ...]] | None:
    try:
        tree = trigger_lark().parse(text)
    except LarkError:
        return None
    found: list[Problem] = []
    return build_trigger(tree, found.append), tuple(found)


def check_differential(data: bytes) -> None:
    """The fast paths and the Lark grammar agree on every trigger they both see, and what the
    full parser accepts formats to a fixed point."""
    text = _text(data).strip(" \t")
    if "\n" in text or "\r" in text or too_deep(text, MAX_FAST_DEPTH) is not None:
        return
    slow = _lark(text)
    for name, fast_path in (("simple", parse_simple_event), ("compound", parse_compound_trigger)):
        fast = fast_path(text)
        if fast is not None:
            assert slow is not None, f"{name} fast path accepts {text!r}, the grammar rejects it"
            assert fast == slow, f"{name} fast path and grammar disagree on {text!r}"
            assert json.dumps(to_json(fast[0])) == json.dumps(to_json(slow[0]))
    if slow is not None:
        assert parse_compound_trigger(text) is not None, f"compound path misses {text!r}"
        shown = slow[0].format()
        assert parse_trigger(shown, limits=_LIMITS) == slow[0], f"not a fixed point: {text!r}"


#: Target name -> the check it runs on each input.
CHECKS: dict[str, Callable[[bytes], None]] = {
    "trigger": check_trigger,
    "config": check_config,
    "qcb": check_qcb,
    "events": check_events,
    "qbconf": check_qbconf,
    "differential": check_differential,
}
