"""Arbitrary text and bytes: the parsers answer with diagnostics or the project's error class,
never another exception and never a hang (each example has a deadline)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from qbcallbacks import QbCallbacksError, parse_config, parse_qcb, parse_trigger
from qbcallbacks.lang.source import decode_source

# Text biased towards the languages' own characters, so that it gets past the first token.
_alphabet = st.one_of(
    st.sampled_from(list("abcjobselfwork-*()&|#= \t\r\n0123456789_.\ufeff")),
    st.characters(),
)
_texts = st.one_of(st.text(), st.text(alphabet=_alphabet, max_size=200))
_patient = settings(deadline=timedelta(seconds=2))


@_patient
@given(_texts)
def test_trigger_parser_raises_only_project_errors(text: str) -> None:
    try:
        model = parse_trigger(text)
    except QbCallbacksError as exc:
        assert str(exc)
    else:
        assert parse_trigger(model.format()) == model


@_patient
@given(_texts)
def test_config_parser_never_raises(text: str) -> None:
    parsed = parse_config(text, "fuzz.conf")
    for d in parsed.diagnostics:
        assert d.line >= 1 and d.column >= 1 and d.end_column > d.column - 1
        assert d.file == "fuzz.conf"
    assert (parsed.document is None) == (not parsed.ok)


@_patient
@given(_texts)
def test_qcb_parser_never_raises(text: str) -> None:
    parsed = parse_qcb(text, "fuzz.qcb")
    assert (parsed.program is None) == (not parsed.ok)


@_patient
@given(st.binary(max_size=300))
def test_bytes_decode_or_raise_project_error(data: bytes) -> None:
    try:
        text = decode_source(data, "fuzz.conf")
    except QbCallbacksError as exc:
        assert "not UTF-8" in str(exc)
    else:
        parse_config(text)
        parse_qcb(text)


def test_hostile_long_lines_stay_linear() -> None:
    # Patterns that make backtracking parsers quadratic; each must finish promptly.
    for text in ["a.py = x" + " " * 50_000 + "y", "a" * 50_000 + "=", "= " + "(" * 20_000,
                 "a.py = " + "a-job-self && " * 5_000]:
        parsed = parse_config(text)
        assert 1 <= len(parsed.diagnostics) <= 2
        assert all(len(d.message) < 300 for d in parsed.diagnostics)
