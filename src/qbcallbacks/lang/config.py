"""Parsing `callbacks.conf` text line by line, so that one bad line never hides another.

Each physical line is split by hand: most by one regex that takes a plain file name up to the
trigger (`_fast_config.fast_head`), the others by `_fast_config.read_line` (plain string
searches), the triggers by the trigger readers; property tests hold both to exactly what the
grammar's `line` rule accepts and builds. A line neither takes is explained with the grammar.
Errors are collected with their line and column and the line is left out; every good line
still loads. Checks that need only the text (file name shape, extension, duplicate lines)
happen here; checks that need the directory (the script exists, permissions, links) are the
loader's.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import Enum
from itertools import repeat
from operator import itemgetter

from .._records import make_many, maker, record
from ..errors import Diagnostic, Severity, make_diagnostic
from ..model.documents import (
    ConfigDocument,
    ConfigLine,
    RuleLine,
    make_config_document,
)
from ..model.limits import Limits, default_limits
from ._fast_config import (
    BLANK,
    BUILTIN_EXTENSIONS,
    FastTail,
    RuleRow,
    Tail,
    fast_head,
    fast_tail,
    file_name_problem,
    line_lists,
    new_row,
    read_line,
)
from ._fast_config import MEMO as _MEMO
from ._trigger_build import Problem
from .source import DiagnosticBudget, collector_paused, line_too_long
from .trigger import problems_to_diagnostics, trigger_problems

__all__ = ["BLANK", "BUILTIN_EXTENSIONS", "ParsedConfig", "RuleRow", "RuleSite", "explain_line",
           "file_name_problem", "parse_config", "scan_config"]

_TRAILING_COMMENT = re.compile(r"[ \t]#")


@record
class RuleSite:
    """A rule line that parsed, with where it stands in the file."""

    line: int
    #: 1-based columns of the file name and of the trigger.
    file_column: int
    trigger_column: int
    #: The full text of the line, for carets in later diagnostics.
    source_line: str
    rule: RuleLine


@record
class ParsedConfig:
    """The outcome of parsing one `callbacks.conf`: good lines, and every problem found."""

    file: str
    #: The document when the text has no errors (warnings allowed); None otherwise.
    document: ConfigDocument | None
    rules: tuple[RuleSite, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return all(d.severity != "error" for d in self.diagnostics)


#: The parse's constructors: every field in order, values already checked.
make_rule_site = maker(RuleSite)
_parsed_config = maker(ParsedConfig)
_RULE = repeat("rule")



def parse_config(text: str, file: str = "callbacks.conf",
                 extensions: Collection[str] = BUILTIN_EXTENSIONS,
                 limits: Limits | None = None) -> ParsedConfig:
    """Parse a whole `callbacks.conf`; never raises for bad text, reports it instead.

    `extensions` (with the dot) are those a runtime is registered for. Lines over the length
    limit are reported, not parsed; past the diagnostics limit problems are only counted.
    """
    limits = default_limits() if limits is None else limits
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    with collector_paused():
        rows, lines = _scan(text, file, extensions, limits, diags, keep_lines=True)
        # The records of every rule line at once (`make_many`, one pass per field), then the
        # sites that hold them.
        n = len(rows)
        rule_lines = make_many(RuleLine, n, (_RULE, *[map(itemgetter(i), rows)
                                                     for i in (4, 5, 6)]))
        sites = make_many(RuleSite, n, (*[map(itemgetter(i), rows) for i in (0, 1, 2, 3)],
                                        rule_lines))
        document = None
        if not diags.has_error:
            take = iter(rule_lines).__next__
            document = make_config_document(tuple(
                [take() if type(line) is RuleRow else line for line in lines]))
        # Freed while the collector still sleeps, so that the collection it owes on waking
        # walks only what the result keeps, not the rows and their trigger rows as well.
        del rows, lines
        parsed = _parsed_config(file, document, tuple(sites), diags.result())
    return parsed


def scan_config(text: str, file: str = "callbacks.conf",
                extensions: Collection[str] = BUILTIN_EXTENSIONS,
                limits: Limits | None = None) -> tuple[list[RuleRow], tuple[Diagnostic, ...]]:
    """What :func:`parse_config` finds, for a loader: the rule lines as rows and the same
    diagnostics, without the document's models (a loader builds only its rules). A row's
    trigger may be a plain row (`_fast_rows`): `_fast_rows.row_model` makes its model."""
    limits = default_limits() if limits is None else limits
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    with collector_paused():
        rows, _ = _scan(text, file, extensions, limits, diags, keep_lines=False)
    return rows, diags.result()


def _scan(text: str, file: str, extensions: Collection[str], limits: Limits,
          diags: DiagnosticBudget, *, keep_lines: bool,
          ) -> tuple[list[RuleRow], list[RuleRow | ConfigLine]]:
    """The rule lines as rows and, with `keep_lines`, every line in order (a rule as its row,
    a blank or comment line as its model); bad lines yield only diagnostics (into `diags`).
    With `keep_lines` (a document is wanted) rows hold trigger models, else plain rows too.

    A line the whole-line shortcut (`fast_head`, `fast_tail`) takes costs one regex match
    and a look-up of its trigger text; any other goes through :class:`_Lines`."""
    rows: list[RuleRow] = []
    lines: list[RuleRow | ConfigLine] = []
    add_row, add_line = rows.append, lines.append
    other = _Lines(file, extensions, limits, diags)
    seen = other.seen
    # Only membership is asked of `extensions`: a loader's is lazy, and listing it would scan
    # the installed packages for site runtimes. Names with those take the slower way.
    head = fast_head(tuple(e for e in BUILTIN_EXTENSIONS if e in extensions)) or _no_head
    tails: dict[str, FastTail | None] = {}  # None: a text the shortcut leaves to `_Lines`
    max_len, max_depth, memo = limits.max_line_length, limits.max_trigger_depth, _MEMO
    unseen = _Unseen.TEXT
    number = 0
    for chunk in line_lists(text):
        for raw in chunk:
            number += 1
            if not raw:
                if keep_lines:
                    add_line(BLANK)
                continue
            m = head(raw) if len(raw) <= max_len else None
            if m is not None:
                after = raw[m.end():]
                tail = tails.get(after, unseen)
                if tail is unseen:
                    tail = fast_tail(after, max_depth, models=keep_lines)
                    if len(tails) < memo:
                        tails[after] = tail
                if tail is not None:
                    model, problems, comment, canonical = tail
                    name, trig_col = m.group(1), m.end() + 1
                    if problems:
                        diags.extend(problems_to_diagnostics(
                            problems, file=file, line=number, column=trig_col,
                            source_line=raw))
                    row = new_row(RuleRow, (number, m.start(1) + 1, trig_col, raw, name, model,
                                         comment))
                    if (key := (name, canonical)) in seen:
                        other.duplicate(row, seen[key])
                    else:
                        seen[key] = number
                    add_row(row)
                    if keep_lines:
                        add_line(row)
                    continue
            entry = other.line(raw, number)
            if entry is not None:
                if type(entry) is RuleRow:
                    add_row(entry)
                if keep_lines:
                    add_line(entry)
    return rows, lines


class _Unseen(Enum):
    """What a look-up of a text the shortcut has not read yet gives."""

    TEXT = 0


def _no_head(raw: str) -> None:
    """The shortcut when no extension fits it: it takes no line."""
    return None


class _Lines:
    """The lines the whole-line shortcut does not take, read one by one with `read_line`;
    keeps the look-ups one file's parse shares between its lines."""

    __slots__ = ("bad", "diags", "extensions", "file", "heads", "limits", "seen", "tails",
                 "texts")

    def __init__(self, file: str, extensions: Collection[str], limits: Limits,
                 diags: DiagnosticBudget) -> None:
        self.file, self.extensions, self.limits, self.diags = file, extensions, limits, diags
        #: The first line of each (file name, canonical trigger text), for duplicates.
        self.seen: dict[tuple[str, str], int] = {}
        # Cached parses hand back one model per distinct trigger text; format each once.
        # Every model in here is held by a row, so ids are not reused; past _MEMO entries it
        # starts over.
        self.texts: dict[int, str] = {}
        self.heads: dict[str, tuple[str, int, Problem | None] | None] = {}
        self.tails: dict[str, Tail] = {}
        self.bad: dict[str, tuple[Severity, ...]] = {}

    def line(self, raw: str, number: int) -> RuleRow | ConfigLine | None:
        """One line: a rule as its row, a blank or comment line as its model, None if bad."""
        diags, file = self.diags, self.file
        if not raw:
            return BLANK
        if len(raw) > self.limits.max_line_length:
            diags.append(line_too_long(raw, number, file, self.limits.max_line_length))
            return None
        before = None
        if diags.full:  # past the limit a line seen bad before is only counted again
            known = self.bad.get(raw)
            if known is not None:
                for severity in known:
                    diags.count(severity)
                return None
            before = diags.tally
        entry = read_line(raw, number, file, diags, self.extensions, self.limits, self.heads,
                          self.tails)
        if entry is False:  # not a line the hand reader takes: the grammar explains it
            _line_error(raw, number, file, diags, self.limits)
            entry = None
        if entry is None:
            if before is not None and len(self.bad) < _MEMO:
                self.bad[raw] = diags.severities_since(before)
            return None
        if type(entry) is RuleRow:
            self._check_duplicate(entry)
        return entry

    def _check_duplicate(self, row: RuleRow) -> None:
        trigger, texts = row.trigger, self.texts
        canonical = texts.get(id(trigger))
        if canonical is None:
            if len(texts) >= _MEMO:
                texts.clear()
            canonical = texts[id(trigger)] = trigger.format()
        key = (row.file, canonical)
        first = self.seen.get(key)
        if first is not None:
            self.duplicate(row, first)
        else:
            self.seen[key] = row.line

    def duplicate(self, row: RuleRow, first: int) -> None:
        """Warn that `row` repeats the rule of line `first`."""
        raw = row.source_line
        self.diags.append(make_diagnostic(
            "QCB202", f"duplicate of line {first}: the callback will run twice",
            file=self.file, line=row.line, column=row.file_column,
            end_column=len(raw.rstrip()) + 1, severity="warning", source_line=raw))


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
