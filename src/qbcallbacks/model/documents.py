"""Parsed files as data: `callbacks.conf` and `.qcb` programs, line by line.

A document keeps every physical line (blank, comment, content) so that `format` can render a
canonical copy that loses nothing an administrator wrote. The final line ending is not a line:
`a\\n` and `a` are the same one-line document, and `format` always ends with a newline.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, field_validator

from ._base import Frozen
from .triggers import Trigger

_COMMENT_RE = re.compile(r"#[^\r\n]*\Z")
# Mirrors FILENAME in callbacks.lark.
FILENAME_RE = re.compile(r"[^\s\x00-\x1f\x7f=#](?:[^\x00-\x1f\x7f=#]*[^\s\x00-\x1f\x7f=#])?\Z")


def _comment(value: str) -> str:
    value = value.rstrip(" \t")
    if not _COMMENT_RE.match(value):
        raise ValueError("a comment starts with '#' and stays on one line")
    return value


class BlankLine(Frozen):
    kind: Literal["blank"] = "blank"

    def format(self) -> str:
        return ""


class CommentLine(Frozen):
    """A whole-line comment; `text` starts with `#` and has no trailing blanks."""

    kind: Literal["comment"] = "comment"
    text: str

    _check = field_validator("text")(_comment)

    def format(self) -> str:
        return self.text


class RuleLine(Frozen):
    """`file = trigger`, with an optional trailing comment."""

    kind: Literal["rule"] = "rule"
    file: str
    trigger: Trigger
    comment: str | None = None

    @field_validator("file")
    @classmethod
    def _check_file(cls, value: str) -> str:
        if not FILENAME_RE.match(value):
            raise ValueError(f"{value!r} cannot be written as a file name in callbacks.conf")
        return value

    @field_validator("comment")
    @classmethod
    def _check_comment(cls, value: str | None) -> str | None:
        return None if value is None else _comment(value)

    def format(self) -> str:
        text = f"{self.file} = {self.trigger.format()}"
        return text if self.comment is None else f"{text} {self.comment}"


ConfigLine = Annotated[Union[BlankLine, CommentLine, RuleLine], Field(discriminator="kind")]  # noqa: UP007 - discriminated union


class ConfigDocument(Frozen):
    """A whole `callbacks.conf`, one entry per physical line."""

    lines: tuple[ConfigLine, ...] = ()

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


class CommandLine(Frozen):
    """One qcb command, lower-cased, with an optional trailing comment."""

    kind: Literal["command"] = "command"
    command: QcbCommandName
    comment: str | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) and value.isascii() else value

    @field_validator("comment")
    @classmethod
    def _check_comment(cls, value: str | None) -> str | None:
        return None if value is None else _comment(value)

    def format(self) -> str:
        return self.command if self.comment is None else f"{self.command} {self.comment}"


QcbLine = Annotated[Union[BlankLine, CommentLine, CommandLine], Field(discriminator="kind")]  # noqa: UP007 - discriminated union


class QcbProgram(Frozen):
    """A `.qcb` file: its commands run in order, top to bottom."""

    lines: tuple[QcbLine, ...] = ()

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(ln.command for ln in self.lines if isinstance(ln, CommandLine))

    def format(self) -> str:
        return "".join(line.format() + "\n" for line in self.lines)
