"""Parsing `.qcb` programs line by line, reporting every unknown command in one pass."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .._records import maker, record
from ..errors import Diagnostic, make_diagnostic
from ..model.documents import (
    BLANK,
    QCB_COMMANDS,
    BlankLine,
    CommandLine,
    QcbLine,
    QcbProgram,
    make_command_line,
    make_comment_line,
    make_qcb_program,
)
from ..model.limits import Limits, default_limits

if TYPE_CHECKING:
    from lark import Token, Tree
from ._fast_qcb import fast_line
from ._lark import qcb_lark
from .source import DiagnosticBudget, iter_line_runs, line_too_long


@record
class ParsedQcb:
    """The outcome of parsing one `.qcb` file."""

    file: str
    program: QcbProgram | None
    #: 1-based line number of each command of the program, in order.
    command_lines: tuple[int, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


_parsed_qcb = maker(ParsedQcb)


#: Every blank line of every program is this one object.
_BLANK: BlankLine = BLANK


def parse_qcb(text: str, file: str = "<qcb>", limits: Limits | None = None) -> ParsedQcb:
    """Parse a `.qcb` program; never raises for bad text, reports it instead.

    Lines over the length limit are reported, not parsed; past the diagnostics limit problems
    are only counted.
    """
    limits = default_limits() if limits is None else limits
    lines: list[QcbLine] = []
    numbers: list[int] = []
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    parser = None  # loaded for the first line the fast path leaves to the grammar
    number = 0
    for raw in iter_line_runs(text):
        if type(raw) is int:  # a run of empty lines
            lines.extend([_BLANK] * raw)
            number += raw
            continue
        assert isinstance(raw, str)
        number += 1
        if not raw.strip(" \t"):  # the grammar's blank_line, without a parse
            lines.append(_BLANK)
            continue
        if len(raw) > limits.max_line_length:
            diags.append(line_too_long(raw, number, file, limits.max_line_length))
            continue
        line = fast_line(raw)
        if line is None:
            from lark.exceptions import LarkError, UnexpectedInput  # only for such lines

            parser = parser or qcb_lark()
            try:
                line = _build(parser.parse(raw, start="line"))
            except (UnexpectedInput, LarkError, RecursionError):
                line = None
            if line is None:
                if diags.full:  # explaining (close matches) costs more than parsing
                    diags.count("error")
                else:
                    diags.append(_explain(raw, number, file))
                continue
        if isinstance(line, CommandLine):
            numbers.append(number)
        lines.append(line)
    program = make_qcb_program(tuple(lines)) if not diags.has_error else None
    return _parsed_qcb(file, program, tuple(numbers), diags.result())


_COMMANDS = frozenset(QCB_COMMANDS)


def _build(tree: Tree[Token]) -> QcbLine | None:
    """The line the grammar accepted, built without validation: the grammar's COMMAND and
    COMMENT accept only what the models do, once lower-cased and with trailing blanks cut
    (what their validators do). None for a command whose lower case is not a known name:
    the grammar's case folding also takes a non-ASCII letter whose lower case is not ASCII
    (the long s, U+017F, for `s`), which is no command's spelling."""
    from lark import Token

    toks = {c.type: c.value for c in tree.children if isinstance(c, Token)}
    if tree.data == "command_line":
        comment = toks.get("COMMENT")
        comment = comment.rstrip(" \t") if comment else None
        if toks["COMMAND"].lower() not in _COMMANDS:
            return None
        return make_command_line("command", toks["COMMAND"].lower(), comment)
    if tree.data == "comment_line":
        return make_comment_line("comment", toks["COMMENT"].rstrip(" \t"))
    return _BLANK


_WORD = re.compile(r"[^ \t#]+")


def _explain(raw: str, number: int, file: str) -> Diagnostic:
    bad = next((i for i, ch in enumerate(raw) if (ch < " " and ch != "\t") or ch == "\x7f"), -1)
    if bad >= 0:
        return make_diagnostic("QCB302", f"control character {raw[bad]!r} in the line", file=file,
                               line=number, column=bad + 1, source_line=raw)
    words = list(_WORD.finditer(raw.split(" #")[0].split("\t#")[0]))
    first = words[0]
    if first.group().lower() in QCB_COMMANDS and len(words) > 1:
        extra = words[1]
        return make_diagnostic("QCB302", f"qcb commands take no arguments: unexpected "
                               f"{extra.group()!r} (a comment needs a blank before '#')",
                               file=file, line=number, column=extra.start() + 1,
                               end_column=extra.end() + 1, source_line=raw)
    import difflib  # only for an unknown command

    close = difflib.get_close_matches(first.group().lower(), QCB_COMMANDS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return make_diagnostic("QCB301", f"unknown qcb command {first.group()!r}{hint}", file=file,
                           line=number, column=first.start() + 1, end_column=first.end() + 1,
                           source_line=raw)
