"""Keywords are case-insensitive in ASCII only. Python's Unicode case rules let a few other
letters stand for ASCII ones (the Kelvin sign for k, a long s for s, dotless and dotted i for i),
both in a case-insensitive regex and through `str.lower`; a keyword spelled with one of them is
not that keyword. Each reader (the grammar, the hand readers, the event stream) must refuse it
with a diagnostic, never raise, and never read it as the keyword."""

from __future__ import annotations

import pytest
from lark.exceptions import LarkError

from qbcallbacks.lang import parse_config, trigger_lark
from qbcallbacks.lang.qcb import parse_qcb
from qbcallbacks.model.documents import QCB_COMMANDS
from qbcallbacks.model.triggers import EVENT_TYPES
from qbcallbacks.stream import EventLineError, EventReader

#: An ASCII letter and the non-ASCII letters Unicode's case rules match to it.
TWINS = {"k": "\u212a", "s": "\u017f", "i": "\u0131\u0130"}


def respellings(word: str) -> list[str]:
    """`word` with one letter at a time replaced by each of its non-ASCII twins."""
    out = []
    for at, letter in enumerate(word):
        for twin in TWINS.get(letter, ""):
            out.append(word[:at] + twin + word[at + 1:])
    return out


TYPE_CASES = [(t, r) for t in EVENT_TYPES for r in respellings(t)]
COMMAND_CASES = [(c, r) for c in QCB_COMMANDS for r in respellings(c)]


def test_the_cases_cover_every_foldable_keyword() -> None:
    assert {t for t, _ in TYPE_CASES} == {t for t in EVENT_TYPES if set(t) & set(TWINS)}
    assert len(COMMAND_CASES) > len(QCB_COMMANDS)


@pytest.mark.parametrize(("word", "twin"), TYPE_CASES)
def test_an_event_type_spelled_with_a_twin_is_an_error_not_a_type(word: str, twin: str) -> None:
    for text in (f"a.py = done-{twin}-self\n", f"a.py = done-{twin}-self-x && b-job-self\n"):
        result = parse_config(text)
        assert not result.rules and result.diagnostics, text
        assert all(d.severity == "error" for d in result.diagnostics)
    with pytest.raises(LarkError):
        trigger_lark().parse(f"done-{twin}-self")


@pytest.mark.parametrize(("word", "twin"), COMMAND_CASES)
def test_a_qcb_command_spelled_with_a_twin_is_unknown(word: str, twin: str) -> None:
    result = parse_qcb(f"{twin}\n")
    assert result.program is None
    assert [d.code for d in result.diagnostics] == ["QCB301"]
    assert parse_qcb(f"{word.upper()}\n").program is not None  # ASCII case still folds


@pytest.mark.parametrize("twin", respellings("self") + respellings("and") + respellings("global"))
def test_contexts_operators_and_global_forms_keep_their_twin_spelling(twin: str) -> None:
    result = parse_config(f"a.py = done-job-{twin}\n")
    for rule in result.rules:  # a context is free text: kept as written, not made a keyword
        assert rule.rule.trigger.format() == f"done-job-{twin}"
    joined = parse_config(f"a.py = a-job-self {twin} b-job-self\n")
    assert not joined.rules and joined.diagnostics
    assert not parse_config(f"a.py = {twin}\n").rules


@pytest.mark.parametrize(("word", "twin"), TYPE_CASES)
def test_the_event_stream_refuses_a_twin_spelled_type(word: str, twin: str) -> None:
    with pytest.raises(EventLineError, match="'type' must be one of"):
        EventReader().read({"event": "done", "type": twin, "job": {"id": 1}})
