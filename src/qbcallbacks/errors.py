"""Diagnostics and the one error hierarchy of qbcallbacks.

Every problem found in text a user wrote becomes a :class:`Diagnostic` with a file, a 1-based
line and column, an end, a stable code and a message in words. Exceptions carry diagnostics
rather than bare strings so that the CLI, a language server and the supervisor all report the
same thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning"]

#: Stable diagnostic codes; tools may match on them, so they never change meaning.
CODES: dict[str, str] = {
    "QCB001": "file cannot be read or is not UTF-8",
    "QCB101": "missing '=' between file name and trigger",
    "QCB102": "empty trigger",
    "QCB103": "unknown event type",
    "QCB104": "event without a context",
    "QCB105": "unbalanced parenthesis",
    "QCB106": "dangling operator",
    "QCB107": "syntax error in trigger",
    "QCB108": "invalid event name",
    "QCB109": "syntax error in callbacks.conf line",
    "QCB110": "bad file name",
    "QCB111": "unknown extension",
    "QCB112": "missing script file",
    "QCB113": "link leaving the callback directory",
    "QCB114": "script is not a regular file",
    "QCB150": "reload exceeded its time budget",
    "QCB201": "writable by group or others",
    "QCB202": "duplicate line",
    "QCB203": "job event with an extra",
    "QCB204": "missing callback directory",
    "QCB205": "missing callbacks.conf",
    "QCB301": "unknown qcb command",
    "QCB302": "syntax error in qcb file",
    "QCB401": "Python syntax error",
    "QCB402": "Perl syntax error",
}


class Diagnostic(BaseModel):
    """One finding about a span of user text; positions are 1-based, end column exclusive."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: Severity
    code: str
    message: str
    #: The text of the offending line, used to draw the caret; not part of the JSON contract.
    source_line: str | None = None

    def to_json(self) -> dict[str, object]:
        """The object of the `check --format json` contract (no source line)."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }

    def render(self) -> str:
        """`file:line:col: severity: message [code]`, then the line and a caret under the span."""
        where = f"{self.file}:{self.line}:{self.column}"
        head = f"{where}: {self.severity}: {self.message} [{self.code}]"
        if self.source_line is None:
            return head
        text = self.source_line.expandtabs(1)
        width = max(1, (self.end_column - self.column) if self.end_line == self.line else 1)
        caret = " " * (self.column - 1) + "^" + "~" * (width - 1)
        return f"{head}\n    {text}\n    {caret}"

    def moved(self, *, file: str | None = None, line: int | None = None, column_offset: int = 0,
              source_line: str | None = None) -> Diagnostic:
        """The same finding placed elsewhere: used when a fragment was parsed on its own."""
        new_line = self.line if line is None else line
        return self.model_copy(update={
            "file": self.file if file is None else file,
            "line": new_line,
            "end_line": new_line + (self.end_line - self.line),
            "column": self.column + column_offset,
            "end_column": self.end_column + column_offset,
            "source_line": self.source_line if source_line is None else source_line,
        })


def make_diagnostic(code: str, message: str, *, file: str = "<string>", line: int = 1,
                    column: int = 1, end_column: int | None = None,
                    severity: Severity = "error", source_line: str | None = None) -> Diagnostic:
    """Build a one-line diagnostic; the end defaults to one character past the start."""
    return Diagnostic(
        file=file, line=line, column=column, end_line=line,
        end_column=column + 1 if end_column is None else max(end_column, column + 1),
        severity=severity, code=code, message=message, source_line=source_line,
    )


class QbCallbacksError(Exception):
    """Root of every exception qbcallbacks raises on purpose."""


class SourceError(QbCallbacksError):
    """User text that could not be accepted; carries every diagnostic found, errors first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics) or "invalid input")

    @property
    def errors(self) -> Sequence[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class TriggerError(SourceError):
    """A trigger expression is malformed."""


class ConfigError(SourceError):
    """A callbacks.conf file or callback directory has errors."""


class QcbError(SourceError):
    """A `.qcb` program is malformed."""
