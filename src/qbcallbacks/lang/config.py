"""Parsing `callbacks.conf` text line by line, so that one bad line never hides another.

Each physical line is split by hand (`_fast_config.read_line`: plain string searches and the
trigger readers), which a property test holds to exactly what the grammar's `line` rule
accepts and builds; a line the hand reader does not take is explained with the grammar.
Errors are collected with their line and column and the line is left out; every good line
still loads. Checks that need only the text (file name shape, extension, duplicate lines)
happen here; checks that need the directory (the script exists, permissions, links) are the
loader's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from ..errors import Diagnostic, Severity, make_diagnostic
from ..model._base import Frozen, trusted, trusted_from
from ..model.documents import (
    ConfigDocument,
    ConfigLine,
    RuleLine,
)
from ..model.limits import Limits, default_limits
from ._fast_config import (
    BLANK,
    BUILTIN_EXTENSIONS,
    RuleRow,
    Tail,
    file_name_problem,
    read_line,
)
from ._fast_config import MEMO as _MEMO
from ._trigger_build import Problem
from .source import DiagnosticBudget, collector_paused, iter_line_runs, line_too_long
from .trigger import problems_to_diagnostics, trigger_problems

__all__ = ["BLANK", "BUILTIN_EXTENSIONS", "ParsedConfig", "RuleRow", "RuleSite", "explain_line",
           "file_name_problem", "parse_config", "scan_config"]

_TRAILING_COMMENT = re.compile(r"[ \t]#")


class RuleSite(Frozen):
    """A rule line that parsed, with where it stands in the file."""

    line: int
    #: 1-based columns of the file name and of the trigger.
    file_column: int
    trigger_column: int
    #: The full text of the line, for carets in later diagnostics.
    source_line: str
    rule: RuleLine


class ParsedConfig(Frozen):
    """The outcome of parsing one `callbacks.conf`: good lines, and every problem found."""

    file: str
    #: The document when the text has no errors (warnings allowed); None otherwise.
    document: ConfigDocument | None
    rules: tuple[RuleSite, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return all(d.severity != "error" for d in self.diagnostics)



def parse_config(text: str, file: str = "callbacks.conf",
                 extensions: Collection[str] = BUILTIN_EXTENSIONS,
                 limits: Limits | None = None) -> ParsedConfig:
    """Parse a whole `callbacks.conf`; never raises for bad text, reports it instead.

    `extensions` (with the dot) are those a runtime is registered for. Lines over the length
    limit are reported, not parsed; past the diagnostics limit problems are only counted.
    """
    limits = default_limits() if limits is None else limits
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    lines: list[ConfigLine] = []
    sites: list[RuleSite] = []
    append = lines.append
    with collector_paused():
        for entry in _entries(text, file, extensions, limits, diags):
            if isinstance(entry, RuleRow):
                number, file_col, trig_col, raw, name, model, comment = entry
                line = trusted_from(RuleLine, {"kind": "rule", "file": name, "trigger": model,
                                               "comment": comment})
                append(line)
                sites.append(trusted_from(RuleSite, {
                    "line": number, "file_column": file_col, "trigger_column": trig_col,
                    "source_line": raw, "rule": line}))
            elif isinstance(entry, int):  # a run of empty lines
                lines.extend([BLANK] * entry)
            else:
                append(entry)
    document = None if diags.has_error else trusted(ConfigDocument, lines=tuple(lines))
    return trusted(ParsedConfig, file=file, document=document, rules=tuple(sites),
                   diagnostics=diags.result())


def scan_config(text: str, file: str = "callbacks.conf",
                extensions: Collection[str] = BUILTIN_EXTENSIONS,
                limits: Limits | None = None) -> tuple[list[RuleRow], tuple[Diagnostic, ...]]:
    """What :func:`parse_config` finds, for a loader: the rule lines as rows and the same
    diagnostics, without the document's models (a loader builds only its rules)."""
    limits = default_limits() if limits is None else limits
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    with collector_paused():
        rows = [e for e in _entries(text, file, extensions, limits, diags)
                if type(e) is RuleRow]
    return rows, diags.result()


def _entries(text: str, file: str, extensions: Collection[str], limits: Limits,
             diags: DiagnosticBudget) -> Iterator[RuleRow | ConfigLine | int]:
    """Each line in turn: a rule as a row, a blank or comment line as its model, a run of
    empty lines as their count; bad lines yield nothing but diagnostics (into `diags`)."""
    max_len, number = limits.max_line_length, 0
    seen: dict[tuple[str, str], int] = {}
    # Cached parses hand back one model per distinct trigger text; format each once. Every
    # model in here is held by a row, so ids are not reused; past _MEMO entries it starts over.
    texts: dict[int, str] = {}
    heads: dict[str, tuple[str, int, Problem | None] | None] = {}
    tails: dict[str, Tail] = {}
    bad: dict[str, tuple[Severity, ...]] = {}
    for raw in iter_line_runs(text):
        if type(raw) is int:  # a run of empty lines
            number += raw
            yield raw
            continue
        assert isinstance(raw, str)
        number += 1
        if not raw:
            yield BLANK
            continue
        if len(raw) > max_len:
            diags.append(line_too_long(raw, number, file, max_len))
            continue
        before = None
        if diags.full:  # past the limit a line seen bad before is only counted again
            known = bad.get(raw)
            if known is not None:
                for severity in known:
                    diags.count(severity)
                continue
            before = diags.tally
        entry = read_line(raw, number, file, diags, extensions, limits, heads, tails)
        if entry is False:  # not a line the hand reader takes: the grammar explains it
            _line_error(raw, number, file, diags, limits)
            entry = None
        if entry is None:
            if before is not None and len(bad) < _MEMO:
                bad[raw] = diags.severities_since(before)
            continue
        if type(entry) is not RuleRow:
            yield entry
            continue
        trigger = entry.trigger
        canonical = texts.get(id(trigger))
        if canonical is None:
            if len(texts) >= _MEMO:
                texts.clear()
            canonical = texts[id(trigger)] = trigger.format()
        key = (entry.file, canonical)
        first = seen.get(key)
        if first is not None:
            diags.append(make_diagnostic(
                "QCB202", f"duplicate of line {first}: the callback will run twice",
                file=file, line=number, column=entry.file_column,
                end_column=len(raw.rstrip()) + 1, severity="warning", source_line=raw))
        else:
            seen[key] = number
        yield entry


def _line_error(raw: str, number: int, file: str, diags: DiagnosticBudget,
                limits: Limits | None = None) -> None:
    if diags.full:  # explaining costs more than parsing; past the limit only count
        diags.count("error")
    else:
        diags.append(explain_line(raw, number, file, limits))


def explain_line(raw: str, number: int, file: str, limits: Limits | None = None) -> Diagnostic:
    """The diagnostic for a line the grammar rejected, in an administrator's words."""
    def at(problem: Problem, base: int = 0) -> Diagnostic:
        return problems_to_diagnostics((problem,), file=file, line=number, column=base + 1,
                                       source_line=raw)[0]

    bad = next((i for i, ch in enumerate(raw) if (ch < " " and ch != "\t") or ch == "\x7f"), -1)
    if bad >= 0:
        return at(Problem("QCB109", f"control character {raw[bad]!r} in the line", bad, bad + 1))
    lead = len(raw) - len(raw.lstrip(" \t"))
    eq = raw.find("=")
    if eq < 0:
        word_end = lead + len(raw[lead:].split()[0]) if raw.strip() else lead
        return at(Problem("QCB101", "missing '=' between the file name and the trigger "
                          "(write 'file = trigger')", lead, max(word_end, lead + 1)))
    name = raw[lead:eq].rstrip(" \t")
    if not name:
        return at(Problem("QCB110", "missing file name before '='", eq, eq + 1))
    rest = raw[eq + 1:]
    trig_start = eq + 1 + len(rest) - len(rest.lstrip(" \t"))
    comment = _TRAILING_COMMENT.search(raw, trig_start - 1) if trig_start > eq + 1 else None
    if comment is None and raw[trig_start:trig_start + 1] == "#":
        comment = re.compile("#").search(raw, trig_start)
    trig_end = comment.start() if comment is not None else len(raw)
    trigger = raw[trig_start:trig_end]
    if not trigger.strip(" \t"):
        return at(Problem("QCB102", "empty trigger: write an event such as done-job-self "
                          "after '='", eq, eq + 1))
    _, offset, problems = trigger_problems(trigger, limits)
    if problems and problems[0].severity == "error":
        return at(problems[0], trig_start + offset)
    bad_name = file_name_problem(name)
    if bad_name is not None:
        return at(bad_name, lead)
    return at(Problem("QCB109", "this line is not 'file = trigger'", lead, max(len(raw), lead + 1)))
