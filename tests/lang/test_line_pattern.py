"""The whole-line regex of the callbacks.conf reader (`_fast_config.line_pattern`).

It splits many lines per call, each up to its trigger when its file name is plain. Two
properties hold it: a line it splits is split as the per-line shortcut (`fast_head`) splits
it, which the tests of test_parse_fast_path.py hold to the grammar; and a file read in chunks
reports each line exactly as that line read alone, line numbers, columns, limits and all,
whatever blank, CR, byte order mark or bad line surrounds it.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from qbcallbacks.lang import _fast_config, lark_with_grammar, parse_config
from qbcallbacks.lang._fast_config import (
    BUILTIN_EXTENSIONS,
    fast_head,
    line_pattern,
)
from qbcallbacks.model.limits import Limits

grammar_lines = from_lark(lark_with_grammar("callbacks.lark"), start="line")
#: Pieces of lines: usual ones, and those on the regex's edges (blanks, tabs, `=` in a name, a
#: CR, NUL, non-ASCII letters and blanks, a byte order mark, keywords in odd case, a line over
#: the length limit the tests set).
PIECES = ["a.py", "b-c.PL", "x.qcb", "a=b.py", " = ", "=", "\t", " ", "done-job-self",
          "DONE-Job-SELF", "x-work-self-*", "x-job-self-3", "globaltime-job-self", "-f1",
          "-1-2", " # c", "#", " && y-job-parent", "||", " or ", " AND ", "(", ")", "\r",
          "\x00", "é", "\u3000", "\ufeff", "\n", "\n", "a.txt", "z" * 90]
lines = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)
one_lines = st.one_of(grammar_lines, lines.map(lambda text: text.replace("\n", "")))


@given(one_lines)
@example("a.py = done-job-self")
@example(" \ta.Py\t=DONE-JOB-PARENT-3 \t# c \t")
@example("a.py = x-job-self #a\rb")
@example("a=b.py = x-job-self")
def test_a_line_the_regex_takes_is_split_as_the_line_shortcut_splits_it(raw: str) -> None:
    m = line_pattern(BUILTIN_EXTENSIONS).fullmatch(raw + "\n")
    assert m is not None  # every line is matched, by one alternative or the other
    head_match = fast_head(BUILTIN_EXTENSIONS)(raw)  # type: ignore[misc]
    if m.group(1) is None:
        assert m.group(m.re.groups) == raw
        assert head_match is None or "\r" in raw
        return
    line, head, lead, name, after = m.group(1, 2, 3, 4, 5)
    assert line == raw and "\r" not in raw
    assert head_match is not None
    assert (head_match.group(1), head_match.start(1), head_match.end()) == (
        name, len(lead), len(head))
    assert after == raw[head_match.end():]


def reported(text: str, limits: Limits, shift: int) -> tuple[list[object], list[object]]:
    """The rule sites and the diagnostics of `text`, line numbers moved back by `shift`."""
    parsed = parse_config(text, limits=limits)
    rows = [(s.line - shift, s.file_column, s.trigger_column, s.source_line, s.rule)
            for s in parsed.rules]
    # A duplicate is a matter between lines: line by line, no line repeats another.
    diags = [(d.line - shift, d.end_line - shift, d.column, d.end_column, d.severity, d.code,
              d.message, d.source_line) for d in parsed.diagnostics if d.code != "QCB202"]
    return rows, diags


@given(lines, st.sampled_from([8, 64, 1 << 14]))
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


def test_usual_lines_are_split_at_their_trigger() -> None:
    find = line_pattern(BUILTIN_EXTENSIONS).findall
    text = "a.py = done-job-self\r\n b.qcb\t=\tx-work-self-* # c\n# only a comment\n\n"
    assert [m[4] for m in find(text)] == ["done-job-self", "x-work-self-* # c", "", ""]
    assert line_pattern(()).findall("a.py = done-job-self\n")[0][-1] == "a.py = done-job-self"
