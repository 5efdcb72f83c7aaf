"""Each line of a callbacks.conf is reported as that line read alone.

The reader splits the text a chunk at a time and reads most lines by shortcuts with caches
shared between lines (`_fast_config.line_lists`, `fast_head`, `fast_tail`); whatever blank,
CR, byte order mark, bad or over-long line surrounds a line, its rows and diagnostics (line,
columns, message) are those of the line alone. The tests of test_parse_fast_path.py hold each
line alone to the grammar.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from qbcallbacks.lang import _fast_config, parse_config
from qbcallbacks.model.limits import Limits

#: Pieces of lines: usual ones, and those on the readers' edges (blanks, tabs, `=` in a name, a
#: CR, NUL, non-ASCII letters and blanks, a byte order mark, keywords in odd case, a line over
#: the length limit the tests set).
PIECES = ["a.py", "b-c.PL", "x.qcb", "a=b.py", " = ", "=", "\t", " ", "done-job-self",
          "DONE-Job-SELF", "x-work-self-*", "x-job-self-3", "globaltime-job-self", "-f1",
          "-1-2", " # c", "#", " && y-job-parent", "||", " or ", " AND ", "(", ")", "\r",
          "\x00", "é", "\u3000", "\ufeff", "\n", "\n", "a.txt", "z" * 90]
lines = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def reported(text: str, limits: Limits, shift: int) -> tuple[list[object], list[object]]:
    """The rule sites and the diagnostics of `text`, line numbers moved back by `shift`."""
    parsed = parse_config(text, limits=limits)
    rows = [(s.line - shift, s.file_column, s.trigger_column, s.source_line, s.rule)
            for s in parsed.rules]
    # A duplicate is a matter between lines: line by line, no line repeats another.
    diags = [(d.line - shift, d.end_line - shift, d.column, d.end_column, d.severity, d.code,
              d.message, d.source_line) for d in parsed.diagnostics if d.code != "QCB202"]
    return rows, diags


@given(lines, st.sampled_from([8, 64, 1 << 20]))
@example("a.py = done-job-self\r\n\n\ufeffb.py = x-job-self\r\r\nc.py=d-job-self", 8)
def test_a_file_read_in_chunks_reports_each_line_as_that_line_alone(text: str,
                                                                    chunk: int) -> None:
    limits = Limits(max_line_length=80, max_diagnostics=1000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_fast_config, "_CHUNK", chunk)
        whole = reported(text, limits, 0)
    alone: tuple[list[object], list[object]] = ([], [])
    # A leading byte order mark is the file's, and the reader drops it: so does iter_lines.
    raw_lines = text.removeprefix("\ufeff").split("\n")
    if text.endswith("\n"):
        raw_lines.pop()
    for number, raw in enumerate(raw_lines, 1):
        raw = raw.removesuffix("\r")
        # After a first blank line, so that a byte order mark in it stays part of the line;
        # ended by CR LF, so that a CR it ends with stays too.
        rows, diags = reported("\n" + raw + "\r\n", limits, 2 - number)
        alone[0].extend(rows)
        alone[1].extend(diags)
    assert whole == alone


def test_a_comment_holding_a_carriage_return_is_an_error_as_in_the_grammar() -> None:
    """The grammar's COMMENT holds no CR: the shortcut must not take such a line either."""
    parsed = parse_config("a.py = x-job-self #a\rb\n")
    assert [d.code for d in parsed.diagnostics] == ["QCB109"]
    assert parse_config("a.py = x-job-self #ab\r\n").ok  # the CR of a CR LF line end
