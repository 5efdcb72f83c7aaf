"""Limits on text: each is checked before the expensive work, has its own code, and keeps the
work bounded (peak memory stays small; explanations past the diagnostics limit are skipped)."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from qbcallbacks import parse_config, parse_qcb, parse_trigger
from qbcallbacks._records import to_json
from qbcallbacks.errors import (
    Diagnostic,
    RecordError,
    TriggerError,
    make_diagnostic,
    terminal_safe,
)
from qbcallbacks.lang import config as config_module
from qbcallbacks.lang import lark_with_grammar
from qbcallbacks.lang import qcb as qcb_module
from qbcallbacks.lang._fast_config import line_lists
from qbcallbacks.lang._fast_rows import row_model
from qbcallbacks.lang.source import cap_diagnostics, iter_line_runs, iter_lines
from qbcallbacks.model.limits import HARD_MAX_TRIGGER_DEPTH, Limits, limits_from_env
from qbcallbacks.model.supervisor import HostError, parse_jobinfo_args

MB = 1 << 20


def peak_bytes(work: Callable[[], object]) -> int:
    """Peak memory allocated while `work` runs (its input is allocated before)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def nested(depth: int) -> str:
    """A trigger whose parentheses open `depth` groups at once, alternating operators."""
    text = "a-job-self"
    for i in range(depth):
        text = f"(b-job-x{i} {'&&' if i % 2 else '||'} {text})"
    return text


def trigger_codes(text: str, limits: Limits | None = None) -> list[str]:
    with pytest.raises(TriggerError) as info:
        parse_trigger(text, limits=limits)
    return [d.code for d in info.value.diagnostics]


def at_stack_depth(frames: int, work: Callable[[], object]) -> object:
    if frames:
        return at_stack_depth(frames - 1, work)
    return work()


def test_depth_limit_is_a_fixed_number_whatever_the_call_stack() -> None:
    limit = Limits().max_trigger_depth
    deepest = nested(limit)
    model = parse_trigger(deepest)
    assert at_stack_depth(600, lambda: parse_trigger(deepest)) == model
    assert trigger_codes(nested(limit + 1)) == ["QCB005"]
    assert at_stack_depth(600, lambda: trigger_codes(nested(limit + 1))) == ["QCB005"]


def test_every_accepted_depth_serializes_and_formats() -> None:
    limits = Limits(max_trigger_depth=HARD_MAX_TRIGGER_DEPTH)
    model = parse_trigger(nested(HARD_MAX_TRIGGER_DEPTH), limits=limits)
    deep_json = at_stack_depth(sys.getrecursionlimit() - 200, lambda: to_json(model))
    assert deep_json == to_json(model) and json.loads(json.dumps(deep_json)) == deep_json
    assert '"kind": "and"' in json.dumps(deep_json) and '"kind": "or"' in json.dumps(deep_json)
    assert at_stack_depth(sys.getrecursionlimit() - 200, lambda: parse_trigger(
        nested(HARD_MAX_TRIGGER_DEPTH), limits=limits)) == model
    assert parse_trigger(model.format(), limits=limits) == model


def paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth = max(0, depth + (char == "(") - (char == ")"))
        deepest = max(deepest, depth)
    return deepest


# The nesting is what varies here; a few dozen drawn triggers (each costly to draw) do.
@settings(max_examples=min(settings.default.max_examples, 25))
@given(from_lark(lark_with_grammar("trigger.lark"), start="trigger"), st.integers(0, 40))
def test_grammatical_triggers_nested_deeper_than_the_limit_are_qcb005(text: str,
                                                                      extra: int) -> None:
    limits = Limits(max_trigger_depth=16)
    wrapped = "(" * extra + text + ")" * extra
    if paren_depth(wrapped) > limits.max_trigger_depth:
        assert trigger_codes(wrapped, limits) == ["QCB005"]
    else:
        assert parse_trigger(wrapped, limits=limits) == parse_trigger(text, limits=limits)


def test_depth_setting_cannot_pass_the_hard_ceiling() -> None:
    with pytest.raises(RecordError, match=f"max_trigger_depth must be from 1 to "
                                          f"{HARD_MAX_TRIGGER_DEPTH}, not 65"):
        Limits(max_trigger_depth=HARD_MAX_TRIGGER_DEPTH + 1)
    assert trigger_codes("((((a-job-self))))", Limits(max_trigger_depth=3)) == ["QCB005"]


def test_a_million_parentheses_are_rejected_by_length_without_parsing() -> None:
    text = "(" * 1_000_000 + "a-job-self" + ")" * 1_000_000
    seen: list[str] = []
    assert peak_bytes(lambda: seen.extend(trigger_codes(text))) < 2 * MB
    assert seen == ["QCB006"]
    within_length = "(" * 2000 + "a-job-self" + ")" * 2000
    assert trigger_codes(within_length) == ["QCB005"]


def test_long_config_line_is_reported_and_not_echoed() -> None:
    text = "a.py = " + "x" * 10_000 + "\nb.py = done-job-self\n"
    parsed = parse_config(text, limits=Limits(max_line_length=4096))
    [diag] = parsed.diagnostics
    assert (diag.code, diag.line, diag.source_line) == ("QCB006", 1, None)
    assert [site.line for site in parsed.rules] == [2]


def test_long_qcb_line_is_reported() -> None:
    parsed = parse_qcb("unblock-self\n" + "#" * 5000 + "\n", limits=Limits(max_line_length=4096))
    assert [(d.code, d.line) for d in parsed.diagnostics] == [("QCB006", 2)]


def test_config_diagnostics_are_capped_and_the_rest_explained_never(
        monkeypatch: pytest.MonkeyPatch) -> None:
    explained: list[int] = []
    original = config_module.explain_line

    def counting(raw: str, number: int, file: str, limits: Limits | None = None) -> Diagnostic:
        explained.append(number)
        return original(raw, number, file, limits)

    monkeypatch.setattr(config_module, "explain_line", counting)
    text = "not a line\n" * 20_000
    parsed = parse_config(text, limits=Limits(max_diagnostics=50))
    assert len(parsed.diagnostics) == 51
    summary = parsed.diagnostics[-1]
    assert (summary.code, summary.severity) == ("QCB010", "error")
    assert summary.message.startswith("19950 more problem(s)")
    assert len(explained) == 50
    assert parsed.document is None


def test_qcb_diagnostics_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    explained: list[int] = []
    original = qcb_module._explain

    def counting(raw: str, number: int, file: str) -> Diagnostic:
        explained.append(number)
        return original(raw, number, file)

    monkeypatch.setattr(qcb_module, "_explain", counting)
    parsed = parse_qcb("unblok-self\n" * 5_000, limits=Limits(max_diagnostics=10))
    assert [d.code for d in parsed.diagnostics] == ["QCB301"] * 10 + ["QCB010"]
    assert len(explained) == 10


def test_blank_lines_cost_a_pointer_each() -> None:
    text = "\n" * 200_000 + "a.py = done-job-self\n" + "   \n" * 100_000
    peak = peak_bytes(lambda: parse_config(text))
    assert peak < 300_000 * 40
    parsed = parse_config(text)
    assert parsed.document is not None
    assert len({id(line) for line in parsed.document.lines if line.kind == "blank"}) == 1
    qcb_peak = peak_bytes(lambda: parse_qcb("\n" * 200_000 + "unblock-self\n"))
    assert qcb_peak < 200_000 * 40


def test_capping_merges_summaries_per_file() -> None:
    diags = [make_diagnostic("QCB109", "x", file="a", line=n) for n in range(1, 6)]
    diags += [make_diagnostic("QCB112", "y", file="b", line=1)]
    capped = cap_diagnostics(diags, 2)
    assert [(d.file, d.code) for d in capped] == [
        ("a", "QCB109"), ("a", "QCB109"), ("a", "QCB010"), ("b", "QCB112")]
    again = cap_diagnostics([*capped[:2], make_diagnostic("QCB109", "z", file="a", line=9),
                             capped[2]], 2)
    assert again[-1].message.startswith("4 more problem(s) in this file not shown (4 error(s))")


def test_qb_call_arguments_are_bounded_before_parsing() -> None:
    with pytest.raises(HostError, match="QCB016"):
        parse_jobinfo_args(["-agenda"] * 10_000)
    with pytest.raises(HostError, match="QCB017"):
        parse_jobinfo_args(["-id", "1" * 1_000_000])
    at_limit = ["-agenda"] * (Limits().max_qb_args - 2) + ["-id", 1]
    assert parse_jobinfo_args(at_limit).ids == (1,)


def test_limits_come_from_the_environment() -> None:
    limits = limits_from_env({"QBCALLBACKS_MAX_LINE_LENGTH": "200", "OTHER": "1"})
    assert limits.max_line_length == 200
    assert limits.max_config_bytes == Limits().max_config_bytes
    with pytest.raises(RecordError, match="QBCALLBACKS_MAX_TRIGGER_DEPTH is 'deep', not a whole"):
        limits_from_env({"QBCALLBACKS_MAX_TRIGGER_DEPTH": "deep"})
    with pytest.raises(RecordError, match="max_line_length must be at least 80, not 79"):
        limits_from_env({"QBCALLBACKS_MAX_LINE_LENGTH": "79"})


@pytest.mark.parametrize(("field", "value", "words"), [
    ("max_diagnostics", 0, "must be at least 1, not 0"),
    ("max_config_bytes", -5, "must be at least 1, not -5"),
    ("max_trigger_depth", 0, "must be from 1 to 64, not 0"),
    ("max_qb_args", "9", "must be int, not str"),
    ("max_qb_args", True, "must be int, not bool"),
    ("max_qbconf_bytes", 1.5, "must be int, not float"),
])
def test_limits_out_of_range_are_refused_by_name(field: str, value: object,
                                                 words: str) -> None:
    with pytest.raises(RecordError, match=f"Limits.{field} {words}"):
        Limits(**{field: value})  # type: ignore[arg-type]
    assert Limits(**{field: 1 if field != "max_trigger_depth" else 64})  # type: ignore[arg-type]


def test_a_bad_environment_keeps_the_default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor must start whatever the environment says: a bad value falls back."""
    from qbcallbacks.model.limits import default_limits

    monkeypatch.setenv("QBCALLBACKS_MAX_DIAGNOSTICS", "0")
    default_limits.cache_clear()
    try:
        assert default_limits() == Limits()
        monkeypatch.setenv("QBCALLBACKS_MAX_DIAGNOSTICS", "7")
        default_limits.cache_clear()
        assert default_limits().max_diagnostics == 7
    finally:
        monkeypatch.delenv("QBCALLBACKS_MAX_DIAGNOSTICS")
        default_limits.cache_clear()


def test_render_escapes_control_characters_and_keeps_the_caret_under_the_span() -> None:
    line = "a.py = \x1b]0;owned\x07 done-job-self"
    col = line.index("done") + 1
    diag = make_diagnostic("QCB109", "bad \x1b[31m", file="cb/\x1bx", column=col,
                           end_column=col + 13, source_line=line)
    text = diag.render()
    assert "\x1b" not in text and "\x07" not in text
    head, shown, caret = text.split("\n")
    assert head.startswith(f"cb/\\x1bx:1:{col}:") and "bad \\x1b[31m" in head
    assert shown.strip() == terminal_safe(line)
    assert shown[caret.index("^"):caret.index("^") + 13] == "done-job-self"
    assert diag.to_json()["message"] == "bad \x1b[31m"
    assert terminal_safe("tab\tstays") == "tab\tstays"


@given(st.text(alphabet="\n\r a\ufeff", max_size=40))
def test_blank_runs_expand_to_the_same_lines(text: str) -> None:
    expanded: list[str] = []
    for item in iter_line_runs(text):
        expanded.extend([""] * item if isinstance(item, int) else [item])
    assert expanded == list(iter_lines(text))
    assert [line for lines in line_lists(text) for line in lines] == expanded


def test_line_lists_cut_big_texts_only_at_line_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    from qbcallbacks.lang import _fast_config

    monkeypatch.setattr(_fast_config, "_CHUNK", 4)
    text = "\ufeffab\r\n\n\ncdefgh\nij\r\n\nk\n"
    chunks = list(line_lists(text))
    assert len(chunks) > 1
    assert [line for lines in chunks for line in lines] == list(iter_lines(text))


_POOL = ["a.py = done-job-self", "a.py = done-jib-self", "b.py = done-job-self-3",
         "not a line", "a.txt = done-job-self", "a.txt = done-jib-self", "c.py = compelte-job-slef",
         "# a comment", "", "  ", "a.py = done-job-self\r", "d.py = (done-job-self"]


@settings(max_examples=25)
@given(st.lists(st.sampled_from(_POOL), max_size=60), st.integers(1, 6))
def test_repeated_bad_lines_count_as_if_each_were_parsed(lines: list[str], cap: int) -> None:
    """Past the limit a bad line seen before is only counted again: the summary says what
    parsing every line would, and the loader's rows are the parser's rule sites."""
    text = "\n".join(lines) + "\n"
    limits = Limits(max_diagnostics=cap)
    fast = parse_config(text, limits=limits)
    rows, diags = config_module.scan_config(text, limits=limits)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_module, "_MEMO", 0)
        slow = parse_config(text, limits=limits)
    assert fast == slow
    assert diags == slow.diagnostics
    assert [(s.line, s.file_column, s.trigger_column, s.source_line, s.rule.file,
             s.rule.trigger, s.rule.comment) for s in slow.rules] == [
        row._replace(trigger=row_model(row.trigger)) for row in rows]
