"""Triggers that can never fire load with a warning that says why; `global` with an extra is
an error that says `global` takes none."""

from __future__ import annotations

import pytest

from qbcallbacks.errors import CODES, TriggerError
from qbcallbacks.lang.config import parse_config
from qbcallbacks.lang.trigger import parse_trigger_with_warnings


@pytest.mark.parametrize(("trigger", "code", "words"), [
    ("globalrepeat-10", "QCB132", "has no interval"),
    ("globalrepeat-100-0", "QCB132", "not a positive number of seconds"),
    ("dummy-repeat-self-100", "QCB132", "has no interval"),
    ("tick-repeat-self-100-abc", "QCB132", "two numbers"),
    ("globaltime-abc", "QCB131", "Qube time"),
    ("dummy-time-self-soon", "QCB131", "Qube time"),
    ("complete-subjob-self-first", "QCB133", "subjob id"),
    ("complete-job-self && (globalrepeat-5-0 || done-job-self)", "QCB132", "positive"),
])
def test_never_firing_triggers_are_warned_about(trigger: str, code: str, words: str) -> None:
    _, warnings = parse_trigger_with_warnings(trigger)
    assert [(w.code, w.severity) for w in warnings] == [(code, "warning")]
    assert "can never fire" in warnings[0].message and words in warnings[0].message
    assert code in CODES


@pytest.mark.parametrize("trigger", ["globaltime-10000", "globalrepeat-10000-60",
                                     "dummy-time-self-*", "dummy-repeat-self-10-0.5",
                                     "complete-subjob-self-02", "global", "dummy-time-self"])
def test_triggers_that_can_fire_have_no_warning(trigger: str) -> None:
    assert parse_trigger_with_warnings(trigger)[1] == []


def test_global_with_an_extra_says_global_takes_none() -> None:
    with pytest.raises(TriggerError) as info:
        parse_trigger_with_warnings("global-10")
    [diag] = info.value.diagnostics
    assert diag.code == "QCB130" and "takes no extra" in diag.message
    assert "unknown event type" not in diag.message


def test_the_warning_points_at_the_extra_in_callbacks_conf() -> None:
    parsed = parse_config("rep.qcb = globalrepeat-100-0\n")
    [diag] = parsed.diagnostics
    assert (diag.code, diag.line, diag.column, diag.end_column) == ("QCB132", 1, 24, 29)
    assert parsed.document is not None and len(parsed.document.lines) == 1
