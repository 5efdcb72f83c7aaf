"""Every malformed line is reported, in one pass, at the right place, in words."""

from __future__ import annotations

import pytest

from qbcallbacks import TriggerError, parse_config, parse_trigger
from qbcallbacks.lang.qcb import parse_qcb
from qbcallbacks.lang.trigger import parse_trigger_with_warnings

BROKEN = """\
# a config with one mistake of each kind; the good lines must still load
good.py = done-job-self
missing-eq.py done-job-self
empty.py =
typo.py = complete-jbo-self
nocontext.py = complete-job
open.py = (done-job-self || failed-job-self
close.py = done-job-self)
dangling.py = done-job-self &&
../escape.py = done-job-self
sub/dir.py = done-job-self
run.sh = done-job-self
extra.py = failed-job-self-5
good.py = DONE-JOB-SELF
also-good.pl = done-work-self-*
"""

# (line, column, end column, code) for each bad line, in file order.
EXPECTED = [
    (3, 1, 14, "QCB101"),
    (4, 10, 11, "QCB102"),
    (5, 20, 23, "QCB103"),
    (6, 16, 28, "QCB104"),
    (7, 11, 12, "QCB105"),
    (8, 25, 26, "QCB105"),
    (9, 29, 31, "QCB106"),
    (10, 1, 13, "QCB110"),
    (11, 1, 11, "QCB110"),
    (12, 1, 7, "QCB111"),
    (13, 27, 29, "QCB203"),
    (14, 1, 24, "QCB202"),
]


def test_every_bad_line_is_reported_in_one_pass_with_its_position() -> None:
    parsed = parse_config(BROKEN, "callbacks.conf")
    found = [(d.line, d.column, d.end_column, d.code) for d in parsed.diagnostics]
    assert found == EXPECTED


def test_good_lines_still_load_beside_bad_ones() -> None:
    parsed = parse_config(BROKEN, "callbacks.conf")
    assert [(s.line, s.rule.file, s.rule.trigger.format()) for s in parsed.rules] == [
        (2, "good.py", "done-job-self"),
        (13, "extra.py", "failed-job-self"),
        (14, "good.py", "done-job-self"),
        (15, "also-good.pl", "done-work-self-*"),
    ]
    # A document is only offered for formatting when nothing is wrong.
    assert parsed.document is None and not parsed.ok


def test_rendered_diagnostic_shows_place_line_and_caret() -> None:
    parsed = parse_config(BROKEN, "cb/callbacks.conf")
    typo = next(d for d in parsed.diagnostics if d.code == "QCB103")
    lines = typo.render().splitlines()
    assert lines[0] == ("cb/callbacks.conf:5:20: error: unknown event type 'jbo'; "
                        "did you mean 'job'? [QCB103]")
    assert lines[1].strip() == "typo.py = complete-jbo-self"
    assert lines[2].index("^") - lines[1].index("t") == 19
    assert lines[2].strip() == "^~~"


def test_json_form_has_exactly_the_contract_keys() -> None:
    d = parse_config("x.py = a-jbo-self\n").diagnostics[0]
    assert list(d.to_json()) == ["file", "line", "column", "end_line", "end_column", "severity",
                                 "code", "message"]
    assert d.to_json()["severity"] == "error"


# Friendly labels for common mistakes: each must still be produced for its example.
LABELS = [
    ("done-job", "QCB104", "has no context"),
    ("done-jbo-self", "QCB103", "did you mean 'job'"),
    ("done-job-self ||", "QCB106", "no event after it"),
    ("&& done-job-self", "QCB106", "no event before it"),
    ("a-job-self and or b-job-self", "QCB106", "between it and 'and'"),
    ("(a-job-self", "QCB105", "never closed"),
    ("a-job-self)", "QCB105", "no matching '('"),
    ("a-job-self b-job-self", "QCB107", "missing '&&' or '||'"),
    ("a-job-self & b-job-self", "QCB107", "the operator is '&&'"),
    ("(a-job-self)or b-job-self", "QCB107", "needs a blank on each side"),
    ("a-work-self-x*", "QCB107", "only as a whole extra"),
    ("a-work-*", "QCB107", "not as a context"),
    ("9lives-job-self", "QCB108", "invalid event name"),
    ("done", "QCB107", "is not an event"),
    ("globaltime", "QCB107", "needs a Qube time"),
    ("()", "QCB107", "empty parentheses"),
    ("", "QCB102", "empty trigger"),
]


@pytest.mark.parametrize(("text", "code", "words"), LABELS)
def test_each_friendly_label_still_triggers(text: str, code: str, words: str) -> None:
    with pytest.raises(TriggerError) as info:
        parse_trigger(text)
    [diag] = info.value.diagnostics
    assert diag.code == code
    assert words in diag.message


def test_job_event_extra_is_a_warning_and_dropped() -> None:
    model, warnings = parse_trigger_with_warnings("failed-job-self-*")
    assert model.format() == "failed-job-self"
    assert [(w.code, w.severity, w.column) for w in warnings] == [("QCB203", "warning", 16)]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "(" * 1000 + "a-job-self" + ")" * 1000
    with pytest.raises(TriggerError) as info:
        parse_trigger(text)
    assert [d.code for d in info.value.diagnostics] == ["QCB005"]


def test_crlf_bom_blank_lines_and_trailing_comments() -> None:
    text = "\ufeff# head\r\n\r\n  a.py\t=\tdone-job-self   # why\r\nb.qcb=done-work-x-#1\r\n"
    parsed = parse_config(text)
    assert parsed.ok
    assert parsed.document is not None
    # `#` with no blank before it belongs to the trigger (here: a work name `#1`).
    assert parsed.document.format() == (
        "# head\n\na.py = done-job-self # why\nb.qcb = done-work-x-#1\n"
    )


def test_hash_without_a_blank_is_part_of_the_trigger() -> None:
    parsed = parse_config("b.qcb=submit-job-self#x\n")
    assert [(d.code, d.column) for d in parsed.diagnostics] == [("QCB107", 18)]


def test_a_line_with_a_bad_name_and_a_bad_trigger_reports_both() -> None:
    parsed = parse_config("../x.sh = done-jbo-self\n")
    assert [(d.column, d.code) for d in parsed.diagnostics] == [(1, "QCB110"), (16, "QCB103")]


@pytest.mark.parametrize("text", ["unblock-\u017felf", "mail-\u017ftatus # why",
                                  "MAIL-\u017fTATUS"])
def test_a_command_spelled_with_a_letter_that_only_folds_to_ascii_is_unknown(text: str) -> None:
    """The grammar's case folding takes the long s for an s; no command is spelled with it."""
    parsed = parse_qcb(text + "\n", "x.qcb")
    assert parsed.program is None
    [diag] = parsed.diagnostics
    assert (diag.code, diag.line, diag.column) == ("QCB301", 1, 1)
    assert "unknown qcb command" in diag.message and "did you mean" in diag.message
