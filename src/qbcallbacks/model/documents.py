"""Parsed files as data: `callbacks.conf` and `.qcb` programs, line by line.

A document keeps every physical line (blank, comment, content) so that `format` can render a
canonical copy that loses nothing an administrator wrote. The final line ending is not a line:
`a\\n` and `a` are the same one-line document, and `format` always ends with a newline.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from .._records import check_type, maker, record
from ..errors import RecordError
from .triggers import AllOf, AnyOf, EventPattern, Trigger

_COMMENT_RE = re.compile(r"#[^\r\n]*\Z")
# Mirrors FILENAME in callbacks.lark.
FILENAME_RE = re.compile(r"[^\s\x00-\x1f\x7f=#](?:[^\x00-\x1f\x7f=#]*[^\s\x00-\x1f\x7f=#])?\Z")


def _comment(owner: str, field: str, value: str | None) -> str | None:
    """A comment as stored: trailing blanks dropped; None stays None."""
    check_type(owner, field, value, str, type(None))
    if value is None:
        return None
    value = value.rstrip(" \t")
    if not _COMMENT_RE.match(value):
        raise RecordError("a comment starts with '#' and stays on one line")
    return value


def _kind(owner: str, got: str, want: str) -> None:
    if got != want:
        raise RecordError(f"a {owner}'s kind is {want!r}, not {got!r}")


@record
class BlankLine:
    kind: Literal["blank"] = "blank"

    def __post_init__(self) -> None:
        _kind("BlankLine", self.kind, "blank")

    def format(self) -> str:
        return ""


@record
class CommentLine:
    """A whole-line comment; `text` starts with `#` and has no trailing blanks."""

    kind: Literal["comment"] = "comment"
    text: str

    def __post_init__(self) -> None:
        _kind("CommentLine", self.kind, "comment")
        check_type("CommentLine", "text", self.text, str)
        object.__setattr__(self, "text", _comment("CommentLine", "text", self.text))

    def format(self) -> str:
        return self.text


@record
class RuleLine:
    """`file = trigger`, with an optional trailing comment."""

    kind: Literal["rule"] = "rule"
    file: str
    trigger: Trigger
    comment: str | None = None

    def __post_init__(self) -> None:
        _kind("RuleLine", self.kind, "rule")
        check_type("RuleLine", "file", self.file, str)
        if not FILENAME_RE.match(self.file):
            raise RecordError(f"{self.file!r} cannot be written as a file name in "
                              "callbacks.conf")
        check_type("RuleLine", "trigger", self.trigger, EventPattern, AllOf, AnyOf)
        object.__setattr__(self, "comment", _comment("RuleLine", "comment", self.comment))

    def format(self) -> str:
        text = f"{self.file} = {self.trigger.format()}"
        return text if self.comment is None else f"{text} {self.comment}"


#: One line of a callbacks.conf (told apart by `kind`).
ConfigLine = BlankLine | CommentLine | RuleLine


@record
class ConfigDocument:
    """A whole `callbacks.conf`, one entry per physical line."""

    lines: tuple[ConfigLine, ...] = ()

    def __post_init__(self) -> None:
        _lines("ConfigDocument", self.lines, (BlankLine, CommentLine, RuleLine))

    def format(self) -> str:
        return "".join(line.format() + "\n" for line in self.lines)


QcbCommandName = Literal[
    "unblock-self", "block-self", "fail-self", "kill-self", "migrate-self", "preempt-self",
    "interrupt-self", "suspend-self", "resume-self",
    "block-work-self", "kill-work-self", "unblock-work-self", "retry-work-self",
    "requeue-work-self", "complete-work-self", "fail-work-self",
    "mail-status", "mail-license-status", "mail-report-status",
    "unblock-subjob-self-single", "unblock-subjob-self", "block-subjob-self", "fail-subjob-self",
    "kill-subjob-self", "migrate-subjob-self", "preempt-subjob-self", "interrupt-subjob-self",
    "suspend-subjob-self", "resume-subjob-self", "mail-subjob-status",
]
QCB_COMMANDS: tuple[str, ...] = get_args(QcbCommandName)
_COMMAND_WORDS: dict[str, str] = {c: c for c in QCB_COMMANDS}


@record
class CommandLine:
    """One qcb command, lower-cased, with an optional trailing comment."""

    kind: Literal["command"] = "command"
    command: QcbCommandName
    comment: str | None = None

    def __post_init__(self) -> None:
        _kind("CommandLine", self.kind, "command")
        check_type("CommandLine", "command", self.command, str)
        command = self.command.lower() if self.command.isascii() else self.command
        if command not in _COMMAND_WORDS:
            raise RecordError(f"{self.command!r} is not a qcb command")
        object.__setattr__(self, "command", _COMMAND_WORDS[command])
        object.__setattr__(self, "comment", _comment("CommandLine", "comment", self.comment))

    def format(self) -> str:
        return self.command if self.comment is None else f"{self.command} {self.comment}"


#: One line of a `.qcb` program (told apart by `kind`).
QcbLine = BlankLine | CommentLine | CommandLine


@record
class QcbProgram:
    """A `.qcb` file: its commands run in order, top to bottom."""

    lines: tuple[QcbLine, ...] = ()

    def __post_init__(self) -> None:
        _lines("QcbProgram", self.lines, (BlankLine, CommentLine, CommandLine))

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(ln.command for ln in self.lines if isinstance(ln, CommandLine))

    def format(self) -> str:
        return "".join(line.format() + "\n" for line in self.lines)


def _lines(owner: str, lines: object, kinds: tuple[type, ...]) -> None:
    check_type(owner, "lines", lines, tuple)
    for line in lines:  # type: ignore[attr-defined] # checked to be a tuple just above
        check_type(owner, "lines item", line, *kinds)


#: The parsers' constructors: every field in order, values already checked.
make_comment_line = maker(CommentLine)
make_rule_line = maker(RuleLine)
make_command_line = maker(CommandLine)
make_config_document = maker(ConfigDocument)
make_qcb_program = maker(QcbProgram)
#: Every blank line of every document is this one record.
BLANK = BlankLine()
