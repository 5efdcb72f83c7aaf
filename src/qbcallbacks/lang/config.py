"""Parsing `callbacks.conf` text line by line, so that one bad line never hides another.

Each physical line is parsed with the grammar's `line` rule. Errors are collected with their
line and column and the line is left out; every good line still loads. Checks that need only
the text (file name shape, extension, duplicate lines) happen here; checks that need the
directory (the script exists, permissions, links) are the loader's.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ..errors import Diagnostic, make_diagnostic
from ..model._base import Frozen, trusted
from ..model.documents import (
    FILENAME_RE,
    BlankLine,
    CommentLine,
    ConfigDocument,
    ConfigLine,
    RuleLine,
)
from ..model.languages import SCRIPT_LANGUAGES
from ..model.limits import Limits, default_limits
from ._trigger_build import Problem, shorten
from .source import DiagnosticBudget, collector_paused, iter_line_runs, line_too_long
from .trigger import problems_to_diagnostics, trigger_problems

#: Extensions (with the dot) of the built-in runtimes, accepted when no others are given.
BUILTIN_EXTENSIONS: tuple[str, ...] = tuple(f".{ext}" for ext in SCRIPT_LANGUAGES)
_TRAILING_COMMENT = re.compile(r"[ \t]#")
#: Every blank line of every document is this one object: blank lines cost a pointer each.
BLANK: BlankLine = trusted(BlankLine, kind="blank")


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


def file_name_problem(name: str,
                      extensions: Collection[str] = BUILTIN_EXTENSIONS) -> Problem | None:
    """Why `name` is not an acceptable script file name, or None; `extensions` have the dot."""
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot > 0 else ""
    if (ext in extensions and "/" not in name and "\\" not in name and name[0] != "-"
            and ".." not in name):
        return None  # the common case, decided without building any message
    n = len(name)
    shown_name = shorten(name)
    if "/" in name or "\\" in name:
        return Problem("QCB110", f"bad file name {shown_name}: it must be a bare name in the "
                       "callback directory, without '/' or '\\'", 0, n)
    if name in (".", "..") or ".." in name.split("."):
        return Problem("QCB110", f"bad file name {shown_name}: '..' is not allowed", 0, n)
    if name.startswith("-"):
        return Problem("QCB110", f"bad file name {shown_name}: it must not start with '-'", 0, n)
    if ext not in extensions:
        shown = f"extension {ext!r}" if ext else "no extension"
        known = ", ".join(f"{e} ({SCRIPT_LANGUAGES.get(e[1:], 'site runtime')})"
                          for e in sorted(extensions))
        return Problem("QCB111", f"unknown script language for {shown_name} ({shown}); "
                       f"known extensions: {known}", 0, n)
    return None


def parse_config(text: str, file: str = "callbacks.conf",
                 extensions: Collection[str] = BUILTIN_EXTENSIONS,
                 limits: Limits | None = None) -> ParsedConfig:
    """Parse a whole `callbacks.conf`; never raises for bad text, reports it instead.

    `extensions` (with the dot) are those a runtime is registered for. Lines over the length
    limit are reported, not parsed; past the diagnostics limit problems are only counted.
    """
    limits = default_limits() if limits is None else limits
    max_len = limits.max_line_length
    diags = DiagnosticBudget(file, limits.max_diagnostics)
    lines: list[ConfigLine] = []
    sites: list[RuleSite] = []
    seen: dict[tuple[str, str], int] = {}
    # Cached parses hand back one model per distinct trigger text; format each once.
    texts: dict[int, str] = {}
    with collector_paused():
        number = 0
        for raw in iter_line_runs(text):
            if type(raw) is int:  # a run of empty lines
                lines.extend([BLANK] * raw)
                number += raw
                continue
            assert isinstance(raw, str)
            number += 1
            if not raw:
                lines.append(BLANK)
                continue
            if len(raw) > max_len:
                diags.append(line_too_long(raw, number, file, max_len))
                continue
            entry = _parse_line(raw, number, file, diags, extensions, limits)
            if entry is None:
                continue
            line, site = entry
            lines.append(line)
            if site is None:
                continue
            trigger = site.rule.trigger
            canonical = texts.get(id(trigger))
            if canonical is None:
                canonical = texts[id(trigger)] = trigger.format()
            key = (site.rule.file, canonical)
            if key in seen:
                diags.append(make_diagnostic(
                    "QCB202", f"duplicate of line {seen[key]}: the callback will run twice",
                    file=file, line=number, column=site.file_column,
                    end_column=len(raw.rstrip()) + 1, severity="warning", source_line=raw))
            else:
                seen[key] = number
            sites.append(site)
    document = None if diags.has_error else trusted(ConfigDocument, lines=tuple(lines))
    return trusted(ParsedConfig, file=file, document=document, rules=tuple(sites),
                   diagnostics=diags.result())


# A rule line splits exactly here: the name cannot hold '=', and no trigger text can hold a
# blank followed by '#', so the first such pair after '=' starts the trailing comment. A
# property test checks that this split plus the trigger grammar accepts and builds what the
# `line` rule of callbacks.lark does. Plain string searches keep it linear on hostile lines.
_COMMENT_START = re.compile(r"[ \t]#")


def _parse_line(raw: str, number: int, file: str, diags: DiagnosticBudget,
                extensions: Collection[str], limits: Limits,
                ) -> tuple[ConfigLine, RuleSite | None] | None:
    stripped = raw.lstrip(" \t")
    if "\r" in raw:
        _line_error(raw, number, file, diags)
        return None
    if not stripped:
        return BLANK, None
    if stripped[0] == "#":
        return trusted(CommentLine, kind="comment", text=stripped.rstrip(" \t")), None
    eq = raw.find("=")
    name = raw[:eq].strip(" \t")
    if eq < 0 or not FILENAME_RE.match(name):
        _line_error(raw, number, file, diags)
        return None
    file_col = len(raw) - len(stripped) + 1
    rest = raw[eq + 1:]
    cut = _COMMENT_START.search(rest)
    trigger = rest if cut is None else rest[:cut.start()]
    comment = None if cut is None else rest[cut.start():].strip(" \t")
    bad_name = file_name_problem(name, extensions)
    if bad_name is not None:
        diags.extend(problems_to_diagnostics((bad_name,), file=file, line=number,
                                             column=file_col, source_line=raw))
    model, offset, problems = trigger_problems(trigger, limits)
    if model is None:
        _line_error(raw, number, file, diags, limits)
        return None
    if bad_name is not None:
        return None
    trig_col = eq + 2 + offset
    if problems:
        diags.extend(problems_to_diagnostics(problems, file=file, line=number, column=trig_col,
                                             source_line=raw))
    line = trusted(RuleLine, kind="rule", file=name, trigger=model, comment=comment)
    site = trusted(RuleSite, line=number, file_column=file_col, trigger_column=trig_col,
                                    source_line=raw, rule=line)
    return line, site


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
