"""Diagnostics and the one error hierarchy of qbcallbacks.

Every problem found in text a user wrote becomes a :class:`Diagnostic` with a file, a 1-based
line and column, an end, a stable code and a message in words. Exceptions carry diagnostics
rather than bare strings so that the CLI, a language server and the supervisor all report the
same thing the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ._records import check_type, maker, record

Severity = Literal["error", "warning"]

#: Stable diagnostic codes; tools may match on them, so they never change meaning.
CODES: dict[str, str] = {
    "QCB001": "file cannot be read or is not UTF-8",
    "QCB005": "trigger nests parentheses too deeply",
    "QCB006": "line too long",
    "QCB007": "callbacks.conf too large",
    "QCB008": "qcb file too large",
    "QCB009": "script file too large",
    "QCB010": "too many diagnostics in one file; the rest are counted",
    "QCB011": "file to read is a link leaving its directory",
    "QCB012": "not a regular file (FIFO, device, directory or socket)",
    "QCB013": "directory cannot be read or entered",
    "QCB014": "out of memory while reading a file",
    "QCB015": "input read error",
    "QCB016": "too many arguments in a qb call",
    "QCB017": "qb call argument too large",
    "QCB018": "qb.conf too large",
    "QCB020": "path given on the command line does not exist",
    "QCB021": "path is not a callback directory, callbacks.conf or callback script",
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
    "QCB130": "global takes no extra",
    "QCB131": "time trigger that can never fire: not a Qube time",
    "QCB132": "repeat trigger that can never fire: no positive interval",
    "QCB133": "subjob trigger that can never fire: extra is not a subjob id",
    "QCB150": "reload exceeded its time budget",
    "QCB201": "writable by group or others",
    "QCB202": "duplicate line",
    "QCB203": "job event with an extra",
    "QCB204": "missing callback directory",
    "QCB205": "missing callbacks.conf",
    "QCB210": "callback directory writable by group or others",
    "QCB211": "owned by a user other than root or the supervisor's user",
    "QCB212": "parent directory writable by group or others",
    "QCB213": "parent directory owned by another user",
    "QCB220": "event name close to a built-in one",
    "QCB221": "context close to self or parent",
    "QCB222": "label mixing look-alike scripts",
    "QCB223": "label with characters no label can hold",
    "QCB301": "unknown qcb command",
    "QCB302": "syntax error in qcb file",
    "QCB401": "Python syntax error",
    "QCB402": "Perl syntax error",
}


# C0 controls other than tab, DEL and the C1 controls: a terminal acts on these (colours, titles,
# cursor moves), so text output shows them escaped. Tabs are shown as a blank.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _escape_char(m: re.Match[str]) -> str:
    return f"\\x{ord(m.group()):02x}"


def terminal_safe(text: str) -> str:
    """`text` with control characters written as `\\xNN`, safe to print to a terminal."""
    return _CONTROL.sub(_escape_char, text)


@record
class Diagnostic:
    """One finding about a span of user text; positions are 1-based, end column exclusive."""

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

    def __post_init__(self) -> None:
        for name in ("file", "code", "message"):
            check_type("Diagnostic", name, getattr(self, name), str)
        for name in ("line", "column", "end_line", "end_column"):
            check_type("Diagnostic", name, getattr(self, name), int)
        check_type("Diagnostic", "source_line", self.source_line, str, type(None))
        if self.severity not in _SEVERITIES:
            raise RecordError(f"Diagnostic.severity must be one of {', '.join(_SEVERITIES)}, "
                              f"not {self.severity!r}")

    @classmethod
    def from_json(cls, data: object) -> Diagnostic:
        """A diagnostic from the object `to_json` wrote (plus an optional `source_line`),
        checked: a `RecordError` (a ValueError) says what is wrong."""
        if not isinstance(data, dict):
            raise RecordError(f"a diagnostic is a JSON object, not {type(data).__name__}")
        unknown = set(data) - set(_FIELDS)
        if unknown:
            raise RecordError(f"a diagnostic has no field {sorted(unknown)[0]!r}")
        try:
            return cls(**data)
        except TypeError as exc:  # a required field is missing
            raise RecordError(f"an incomplete diagnostic: {exc}") from None

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
        where = f"{terminal_safe(self.file)}:{self.line}:{self.column}"
        head = f"{where}: {self.severity}: {terminal_safe(self.message)} [{self.code}]"
        if self.source_line is None:
            return head
        line = self.source_line.replace("\t", " ")
        start = self.column - 1
        stop = self.end_column - 1 if self.end_line == self.line else self.column
        # Escapes widen the text: place the caret under the escaped span.
        before = len(terminal_safe(line[:start])) + max(0, start - len(line))
        width = max(1, len(terminal_safe(line[start:stop])) + max(0, stop - max(len(line), start)))
        caret = " " * before + "^" + "~" * (width - 1)
        return f"{head}\n    {terminal_safe(line)}\n    {caret}"

    def moved(self, *, file: str | None = None, line: int | None = None, column_offset: int = 0,
              source_line: str | None = None) -> Diagnostic:
        """The same finding placed elsewhere: used when a fragment was parsed on its own."""
        new_line = self.line if line is None else line
        return _trusted(
            self.file if file is None else file, new_line, self.column + column_offset,
            new_line + (self.end_line - self.line), self.end_column + column_offset,
            self.severity, self.code, self.message,
            self.source_line if source_line is None else source_line)


_FIELDS = ("file", "line", "column", "end_line", "end_column", "severity", "code", "message",
           "source_line")
#: `Diagnostic(...)` for values known to be of the right types, in field order, unchecked.
_trusted = maker(Diagnostic)



def make_diagnostic(code: str, message: str, *, file: str = "<string>", line: int = 1,
                    column: int = 1, end_column: int | None = None,
                    severity: Severity = "error", source_line: str | None = None) -> Diagnostic:
    """Build a one-line diagnostic; the end defaults to one character past the start.

    Values of exactly the declared types are what the check would accept, so they are
    stored without it; anything else goes through the checking constructor."""
    end: Any = column + 1 if end_column is None else max(end_column, column + 1)
    if (type(file) is type(code) is type(message) is str and severity in _SEVERITIES
            and type(line) is type(column) is type(end) is int
            and (source_line is None or type(source_line) is str)):
        return _trusted(file, line, column, line, end, severity, code, message, source_line)
    return Diagnostic(file=file, line=line, column=column, end_line=line, end_column=end,
                      severity=severity, code=code, message=message,
                      source_line=source_line)  # the check says what is wrong


_SEVERITIES: tuple[str, ...] = ("error", "warning")


class QbCallbacksError(Exception):
    """Root of every exception qbcallbacks raises on purpose."""


class RecordError(QbCallbacksError, ValueError):
    """A plain record (a diagnostic, a trigger, a rule, limits...) was given a value it cannot
    hold; a ValueError, so a pydantic model validating a record field reports it as its own."""


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


class GlobalCallbackError(QbCallbacksError):
    """A global callback was refused (not allowed on this site, or not a valid one), or the
    one named does not exist; the message says why."""
