"""Property tests: the grammars, the parsers and the models agree with each other.

Text is drawn from the `.lark` grammars themselves, models are built as data; either way,
parse -> format -> parse must be a fixed point.
"""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from qbcallbacks import parse_config, parse_qcb, parse_trigger
from qbcallbacks.lang import config_lark, lark_with_grammar, qcb_lark, trigger_lark
from qbcallbacks.lang.source import split_lines
from qbcallbacks.lang.trigger import parse_trigger_with_warnings
from qbcallbacks.model import triggers as trig
from qbcallbacks.model.documents import FILENAME_RE, RuleLine
from support.strategies import config_documents, file_names, qcb_programs, triggers

# Generated file names are safe bare names with a known extension, so that the text is not
# only well-formed but also loadable; the grammar's own FILENAME is exercised separately below.
_config_text = from_lark(lark_with_grammar("callbacks.lark"), start="start",
                         explicit={"FILENAME": file_names})
# Drawing text from a grammar costs about ten times what building a model does, and the
# built-model tests below cover the same ground: the text-drawing tests take half the
# profile's examples.
_text_examples = settings(max_examples=max(1, settings.default.max_examples // 2))


@_text_examples
@given(from_lark(lark_with_grammar("trigger.lark"), start="trigger"))
def test_generated_trigger_text_parses_and_formats_to_a_fixed_point(text: str) -> None:
    model, _ = parse_trigger_with_warnings(text)
    canonical = model.format()
    again = parse_trigger(canonical)
    assert again == model
    assert again.format() == canonical


@given(triggers())
def test_built_trigger_models_render_to_text_that_parses_back(model: trig.TriggerNode) -> None:
    text = model.format()
    assert parse_trigger(text) == model
    # Lark agrees that the canonical text is in the language.
    trigger_lark().parse(text)


@_text_examples
@given(_config_text)
def test_generated_config_text_parses_without_errors_and_round_trips(text: str) -> None:
    parsed = parse_config(text)
    assert [d for d in parsed.diagnostics if d.severity == "error"] == []
    assert parsed.document is not None
    canonical = parsed.document.format()
    again = parse_config(canonical)
    assert again.document == parsed.document
    assert again.document is not None and again.document.format() == canonical
    # Every physical line is kept.
    assert len(parsed.document.lines) == len(split_lines(text))


@_text_examples
@given(from_lark(lark_with_grammar("callbacks.lark"), start="start"))
def test_any_grammatical_config_only_fails_on_file_name_checks(text: str) -> None:
    parsed = parse_config(text)
    assert {d.code for d in parsed.diagnostics} <= {"QCB110", "QCB111", "QCB202", "QCB203",
                                                    "QCB131", "QCB132", "QCB133"}


@given(config_documents)
def test_built_config_documents_render_to_text_that_parses_back(doc: object) -> None:
    text = doc.format()  # type: ignore[attr-defined]
    parsed = parse_config(text)
    assert parsed.document == doc
    config_lark().parse(text, start="start")


@given(from_lark(lark_with_grammar("qcb.lark"), start="start"))
def test_generated_qcb_text_parses_and_round_trips(text: str) -> None:
    parsed = parse_qcb(text)
    assert parsed.ok and parsed.program is not None
    canonical = parsed.program.format()
    assert parse_qcb(canonical).program == parsed.program


@given(qcb_programs)
def test_built_qcb_programs_render_to_text_that_parses_back(program: object) -> None:
    text = program.format()  # type: ignore[attr-defined]
    assert parse_qcb(text).program == program
    qcb_lark().parse(text, start="start")


def _terminal(terminals: list[object], name: str) -> re.Pattern[str]:
    for t in terminals:
        if t.name == name:  # type: ignore[attr-defined]
            return re.compile(t.pattern.to_regexp())  # type: ignore[attr-defined]
    raise AssertionError(f"no terminal {name}")


# Single characters up to here, plus a sample of the rest of Unicode.
_CHARS = [chr(c) for c in [*range(0x3000), 0xFEFF, 0x1F600, 0x10FFFF]]


def _same_language(ours: re.Pattern[str], theirs: re.Pattern[str], samples: list[str]) -> None:
    for s in samples:
        assert bool(ours.match(s)) == bool(theirs.fullmatch(s)), repr(s)


def test_model_regexes_mirror_the_grammar_terminals() -> None:
    terms = trigger_lark().terminals
    words = ["a", "ab-c", "a b", "*", "**", "x*", "1-10", "#1", "self", "_x9", "9x"]
    singles = _CHARS + [c * 2 for c in _CHARS[:200]] + words
    _same_language(trig.NAME_RE, _terminal(terms, "NAME"), singles)
    _same_language(trig.CONTEXT_RE, _terminal(terms, "CONTEXT"), singles)
    _same_language(trig.EXTRA_RE, _terminal(terms, "EXTRA"), singles)
    types = _terminal(terms, "TYPE")
    assert sorted(t for t in trig.EVENT_TYPES if types.fullmatch(t)) == sorted(trig.EVENT_TYPES)
    assert not types.fullmatch("jobs")
    names = ["a.py", "a b.py", " a.py", "a.py ", "a=b", "a#b", "-x", "../x", "\\x", "é.qcb"]
    _same_language(FILENAME_RE, _terminal(config_lark().terminals, "FILENAME"), _CHARS + names)


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12))
def test_filename_regex_and_grammar_accept_the_same_names(name: str) -> None:
    assume("=" not in name and "#" not in name)
    lark_ok = True
    try:
        config_lark().parse(f"{name} = done-job-self", start="line")
    except Exception:
        lark_ok = False
    stripped = name.strip(" \t")
    assert lark_ok == bool(FILENAME_RE.match(stripped))


@given(config_documents)
def test_trusted_construction_equals_checked_records(doc: object) -> None:
    from qbcallbacks._records import field_names, make_many, maker, replace, to_dict

    lines = doc.lines  # type: ignore[attr-defined]
    rules = [line for line in lines if isinstance(line, RuleLine)]
    # One by one, and the rule lines again as one batch.
    built = [maker(type(line))(*[getattr(line, f) for f in field_names(type(line))])
             for line in lines]
    built += make_many(RuleLine, len(rules), [[getattr(r, f) for r in rules]
                                              for f in field_names(RuleLine)])
    for fast, line in zip(built, [*lines, *rules], strict=True):
        checked = type(line)(**{f: getattr(line, f) for f in field_names(type(line))})
        assert fast == line == checked and hash(fast) == hash(line) == hash(checked)
        assert to_dict(fast) == to_dict(line) and repr(fast) == repr(checked)
        if hasattr(line, "comment"):
            copied = replace(fast, comment="# changed  ")
            assert copied.comment == "# changed" and fast.comment == line.comment
