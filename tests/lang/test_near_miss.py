"""Near-miss warnings, the keyword table, and the tolerant outline against Lark's tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lark import Token

from qbcallbacks.config.load import load_directory
from qbcallbacks.errors import CODES
from qbcallbacks.lang import parse_config, parse_qcb, trigger_lark
from qbcallbacks.lang.near_miss import (
    _quiet_context,
    distance,
    fix_for,
    near_miss_diagnostics,
    nearest,
    word_warning,
)
from qbcallbacks.lang.outline import outline_config, outline_qcb, scan_trigger
from qbcallbacks.lang.vocabulary import describe, vocabulary, vocabulary_json
from qbcallbacks.model.documents import QCB_COMMANDS
from qbcallbacks.model.triggers import BUILTIN_NAMES, EVENT_TYPES
from support.strategies import triggers
from support.vectors import vector_cases


def warnings_for(trigger: str) -> list[tuple[str, int, int, str]]:
    parsed = parse_config(f"a.py = {trigger}\n")
    return [(d.code, d.column, d.end_column, d.message) for d in near_miss_diagnostics(parsed)]


@pytest.mark.parametrize(("trigger", "code", "word", "suggestion"), [
    ("compelte-job-self", "QCB220", "compelte", "complete"),
    ("faild-work-self-*", "QCB220", "faild", "failed"),
    ("complete-job-slef", "QCB221", "slef", "self"),
    ("DONE-JOB-PARNET", "QCB221", "PARNET", "parent"),
    ("done-job-self && runing-work-self-*", "QCB220", "runing", "running"),
])
def test_near_misses_warn_with_a_fix(trigger: str, code: str, word: str,
                                     suggestion: str) -> None:
    found = warnings_for(trigger)
    assert len(found) == 1
    got_code, col, end, message = found[0]
    assert got_code == code
    line = f"a.py = {trigger}"
    assert line[col - 1:end - 1] == word
    assert f"did you mean '{suggestion}'?" in message
    diag = near_miss_diagnostics(parse_config(line + "\n"))[0]
    assert diag.severity == "warning"
    assert fix_for(diag, word) == suggestion


@pytest.mark.parametrize("trigger", [
    "render_done-job-self", "complete-job-shelf", "undone-job-self", "done-job-render",
    "lighting-work-comp-*", "done-job-19294", "done-job-parents_group", "submit-job-elf",
    "complete-job-self", "FAILED-work-PARENT-*", "globaltime-10000", "global",
    "mycheck-host-farm01-*",
])
def test_user_names_and_keywords_stay_silent(trigger: str) -> None:
    assert warnings_for(trigger) == []


def test_look_alike_letters_in_a_label_warn() -> None:
    cyrillic = "s\u0435lf"  # Cyrillic small ie
    [(code, _, _, message)] = warnings_for(f"done-job-{cyrillic}")
    assert code == "QCB222" and "Cyrillic" in message and "did you mean 'self'?" in message
    [(code, _, _, _)] = warnings_for("done-job-r\u0435nder")
    assert code == "QCB222"
    # One script throughout is an ordinary (if unusual) label.
    assert warnings_for("done-job-\u0440\u0435\u043d\u0434\u0435\u0440") == []


def test_invisible_characters_in_a_label_warn() -> None:
    [(code, _, _, message)] = warnings_for("done-job-ren\u200bder")
    assert code == "QCB223" and "U+200B" in message


def test_check_reports_near_misses(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("pass\n")
    (tmp_path / "callbacks.conf").write_text("a.py = compelte-job-self\n")
    diags = load_directory(str(tmp_path)).diagnostics
    assert [(d.code, d.line, d.column, d.severity) for d in diags] == [
        ("QCB220", 1, 8, "warning")]
    # An unsaved buffer stands in for the file on disk.
    buffer = load_directory(str(tmp_path), text="a.py = complete-job-self\n").diagnostics
    assert buffer == ()


def test_codes_are_registered() -> None:
    for code in ("QCB220", "QCB221", "QCB222", "QCB223"):
        assert code in CODES
    assert list(CODES) == sorted(CODES)


def test_vocabulary_covers_every_keyword() -> None:
    table = vocabulary_json()
    assert {w["word"] for w in table["name"]} == BUILTIN_NAMES
    assert {w["word"] for w in table["type"]} == set(EVENT_TYPES)
    assert {w["word"] for w in table["context"]} == {"self", "parent"}
    assert [w["word"] for w in table["command"]] == list(QCB_COMMANDS)
    assert all(w.doc for w in vocabulary())
    assert describe("name", "DONE") == describe("name", "done") is not None
    assert describe("name", "render") is None
    assert "subjob" in (describe("command", "kill-subjob-self") or "")
    json.dumps(table)


@given(st.text(max_size=8), st.text(max_size=8))
def test_distance_is_a_symmetric_edit_count(a: str, b: str) -> None:
    d = distance(a, b)
    assert d == distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)


_LARK_KIND = {"NAME": "name", "TYPE": "type", "CONTEXT": "context", "EXTRA": "extra",
              "GLOBAL": "type", "GLOBAL_TIMED": "type", "AND": "operator", "OR": "operator",
              "LPAR": "paren", "RPAR": "paren", "DASH": "dash"}


def lark_pieces(text: str) -> list[tuple[str, int, int]]:
    out = []
    for tok in trigger_lark().parse(text).scan_values(lambda t: isinstance(t, Token)):
        value = str(tok)
        lead = len(value) - len(value.lstrip(" \t"))
        start = tok.start_pos + lead
        out.append((_LARK_KIND[tok.type], start, start + len(value.strip(" \t"))))
    return sorted(out, key=lambda p: p[1])


@pytest.mark.parametrize("case", vector_cases("language-triggers.json"))
def test_outline_splits_every_vector_trigger_as_lark_does(case: dict[str, object]) -> None:
    text = str(case["input"]).strip(" \t")
    if case.get("canonical") is None:
        scan_trigger(text)  # never raises on text the grammar rejects
        return
    mine = [(p.kind, p.start, p.end) for p in scan_trigger(text)]
    assert mine == lark_pieces(text)


@pytest.mark.parametrize("case", vector_cases("language-config.json"))
def test_outline_keeps_every_line(case: dict[str, object]) -> None:
    text = str(case["input"])
    lines = outline_config(text)
    parsed = parse_config(text)
    assert len(lines) == len(text.replace("\r\n", "\n").lstrip("\ufeff").splitlines())
    for site in parsed.rules:
        outline = lines[site.line - 1]
        file_piece = outline.first("file")
        assert outline.kind == "rule" and file_piece is not None
        assert file_piece.text == site.rule.file and file_piece.start + 1 == site.file_column


def test_outline_of_a_half_written_file_keeps_its_pieces() -> None:
    lines = outline_config("a.py = done-job-self\nb.py = (done-jo && \nc.py\n# note\n")
    assert [ln.kind for ln in lines] == ["rule", "rule", "bad", "comment"]
    assert [p.kind for p in lines[1].pieces] == ["file", "equals", "paren", "name", "dash",
                                                "type", "operator"]
    q = outline_qcb("fail-self # why\nkill-self now\n")
    assert [p.kind for p in q[0].pieces] == ["command", "comment"]
    assert [p.kind for p in q[1].pieces] == ["command", "error"]


@given(triggers(), st.sampled_from([("&&", "||"), ("and", "OR"), ("&&", "or")]))
def test_outline_splits_generated_triggers_as_lark_does(trigger, ops) -> None:
    text = trigger.format().replace(" && ", f" {ops[0]} ").replace(" || ", f" {ops[1]} ")
    assert [(p.kind, p.start, p.end) for p in scan_trigger(text)] == lark_pieces(text)


def test_fixes_for_parser_diagnostics() -> None:
    [typo] = parse_config("a.py = complete-jbo-self\n").diagnostics
    assert typo.code == "QCB103" and fix_for(typo, "jbo") == "job"
    [extra] = parse_config("a.py = done-job-self-3\n").diagnostics
    assert extra.code == "QCB203" and fix_for(extra, "-3") == ""
    [command] = parse_qcb("kil-self\n").diagnostics
    assert command.code == "QCB301" and fix_for(command, "kil-self") == "kill-self"
    [plain] = parse_config("a.py = done-job-self &&\n").diagnostics
    assert fix_for(plain, "&&") is None


def test_outline_gives_each_atom_and_operator_of_a_broken_file() -> None:
    text = "a.py = (done-job-self || fail-work-x-1-2) and zz\nbad line\nb.py = x-job-\n"
    first, second, third = outline_config(text)
    raw = first.text
    assert [raw[s:e] for s, e in first.atoms()] == ["done-job-self", "fail-work-x-1-2", "zz"]
    assert [p.text for p in first.pieces if p.kind == "operator"] == ["||", "and"]
    assert second.kind == "bad" and third.atoms() == [(7, 13)]


def reference_nearest(word: str, keywords: tuple[str, ...]) -> str | None:
    """`nearest` as the rule states it: the distance to every keyword, no shortcut."""
    low = word.lower()
    best: tuple[int, str] | None = None
    for key in keywords:
        if low == key:
            return None
        d = distance(low, key)
        ok = (len(low) == len(key) and d == 1) if len(key) <= 5 else (
            abs(len(low) - len(key)) <= 2 and d <= 2)
        if ok and (best is None or d < best[0]):
            best = (d, key)
    return None if best is None else best[1]


_KEYWORDS = (*sorted(BUILTIN_NAMES), "self", "parent")


@st.composite
def slips(draw: st.DrawFn) -> str:
    """A keyword with a few random edits, or any short text."""
    word = list(draw(st.sampled_from(_KEYWORDS)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(word)))
        letter = draw(st.sampled_from("aelnprstx1İ"))
        match draw(st.sampled_from(("insert", "delete", "replace", "swap"))):
            case "insert":
                word.insert(at, letter)
            case "delete" if at < len(word):
                del word[at]
            case "replace" if at < len(word):
                word[at] = letter
            case "swap" if at + 1 < len(word):
                word[at], word[at + 1] = word[at + 1], word[at]
    return "".join(word)


@given(st.one_of(slips(), st.text(max_size=9)),
       st.sampled_from([tuple(sorted(BUILTIN_NAMES)), ("self", "parent")]))
@example("sxlf", ("self", "parent"))
@example("parxnt", ("self", "parent"))
@example("pxrxnt", ("self", "parent"))
@example("compxxte", tuple(sorted(BUILTIN_NAMES)))
def test_nearest_with_its_bounds_equals_the_plain_rule(word: str,
                                                       keywords: tuple[str, ...]) -> None:
    assert nearest(word, keywords) == reference_nearest(word, keywords)


@given(st.one_of(slips(), st.text(max_size=10), st.text("selfparentSELFPARENTx1 ", max_size=9)))
@example("SELF")
@example("pAreNtxx")
@example("x1234567")
@example("s\u0435lf")  # a Cyrillic letter: left to the cached check
def test_a_context_the_quick_filter_passes_has_no_warning(word: str) -> None:
    """The filter the near-miss pass runs before the cached check never hides a warning."""
    if _quiet_context(word):
        assert word_warning("context", word) is None


def test_the_quick_filter_passes_distinct_job_labels() -> None:
    """A file of distinct labels is decided by the filter, not by the cache it would miss."""
    assert all(_quiet_context(f"x{i}") for i in range(0, 200_000, 997))
    assert not _quiet_context("slef") and not _quiet_context("parnet")
