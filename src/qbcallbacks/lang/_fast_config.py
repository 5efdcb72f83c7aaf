"""The hand reader of `callbacks.conf` lines: what the grammar's `line` rule builds, without Lark.

A rule line is split on its first `=` and its first blank-`#` with plain string searches
(linear on hostile lines), the file name checked with a regex, and the trigger read by the
trigger readers (`_fast_trigger`, else the grammar). The property test
`test_line_split_builds_what_the_line_rule_builds` (tests/lang/test_parse_fast_path.py) draws
lines from the grammar (`from_lark`) and hostile near misses and holds this reader to exactly
what the `line` rule accepts and builds, warnings included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from functools import lru_cache
from typing import Literal, NamedTuple

from ..model.documents import BLANK as _BLANK
from ..model.documents import FILENAME_RE, BlankLine, ConfigLine, make_comment_line
from ..model.languages import SCRIPT_LANGUAGES
from ..model.limits import Limits
from ._fast_rows import TriggerRow, event_model, row_model
from ._fast_trigger import match_simple_event, parse_compound_row, simple_event_row
from ._trigger_build import Problem, shorten
from .source import DiagnosticBudget
from .trigger import (
    TriggerModel,
    cached_trigger,
    problems_to_diagnostics,
    too_deep,
    trigger_problems,
)

#: Extensions (with the dot) of the built-in runtimes, accepted when no others are given.
BUILTIN_EXTENSIONS: tuple[str, ...] = tuple(f".{ext}" for ext in SCRIPT_LANGUAGES)
#: About how many characters of text `line_lists` splits at once: the lists of a file of
#: empty lines stay a few megabytes whatever its size.
_CHUNK = 1 << 20


def line_lists(text: str) -> Iterator[list[str]]:
    """The lines of :func:`iter_lines`, a list of them at a time: one `str.split` per chunk
    of text costs far less than a Python step per line."""
    start = 1 if text.startswith("\ufeff") else 0
    end = len(text)
    while start < end:
        stop = text.find("\n", start + _CHUNK) if end - start > _CHUNK else -1
        if stop < 0:
            chunk, start = (text[start:] if start else text), end
            lines = chunk.split("\n")
            if chunk.endswith("\n"):
                lines.pop()  # a final line end does not start a line
        else:
            chunk, start = text[start:stop], stop + 1
            lines = chunk.split("\n")
        if "\r" in chunk:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        yield lines


#: Every blank line of every document is this one object: blank lines cost a pointer each.
BLANK: BlankLine = _BLANK
#: How many entries each of the parse's own look-up tables holds at most (file names, bad
#: lines, canonical trigger texts): enough for any real file, bounded for a hostile one.
MEMO = 4096


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


class RuleRow(NamedTuple):
    """A rule line that parsed, as the loader keeps it. A tuple, not a model: a loader keeps
    one per rule only until it has built the rule itself. A trigger read by the
    whole-line shortcut is kept as its row (`_fast_rows`), which `row_model` makes a model."""

    line: int
    #: 1-based columns of the file name and of the trigger.
    file_column: int
    trigger_column: int
    #: The full text of the line, for carets in later diagnostics.
    source_line: str
    file: str
    trigger: TriggerModel | TriggerRow
    comment: str | None


#: A row built as a tuple is: the named tuple's own constructor is a Python function that
#: calls this, one frame per rule line more.
new_row = tuple.__new__


# A rule line splits exactly here: the name cannot hold '=', and no trigger text can hold a
# blank followed by '#', so the first such pair after '=' starts the trailing comment. A
# property test checks that this split plus the trigger grammar accepts and builds what the
# `line` rule of callbacks.lark does. Plain string searches keep it linear on hostile lines.
_COMMENT_START = re.compile(r"[ \t]#")


#: What the text after a rule line's `=` holds: the trigger's model, the trigger's offset in
#: that text, the trigger's problems (offsets into the stripped trigger), the comment.
Tail = tuple[TriggerModel, int, tuple[Problem, ...], str | None]


def _read_tail(rest: str, limits: Limits) -> Tail | None:
    """The trigger and trailing comment of the text after `=`; None if the trigger does not
    parse (the grammar then explains the line)."""
    cut = _COMMENT_START.search(rest) if "#" in rest else None
    if cut is None:
        trigger, comment = rest, None
    else:
        trigger, comment = rest[:cut.start()], rest[cut.start():].strip(" \t")
    model, offset, problems = trigger_problems(trigger, limits)
    if model is None:
        return None
    return model, offset, problems, comment


def read_line(raw: str, number: int, file: str, diags: DiagnosticBudget,
              extensions: Collection[str], limits: Limits,
              heads: dict[str, tuple[str, int, Problem | None] | None],
              tails: dict[str, Tail],
              ) -> RuleRow | ConfigLine | Literal[False] | None:
    """One non-empty line: a rule as a row, or a blank or comment line as its model; None when
    it is bad and its problems are reported (into `diags`); False when it is not a line this
    reader takes, which the caller explains with the grammar. `heads` caches what the text
    before `=` holds, `tails` what a text after it that read as a trigger holds, across the
    lines of one file (each at most MEMO entries)."""
    if "\r" in raw:
        return False
    first = raw[0]
    if first == " " or first == "\t":
        stripped = raw.lstrip(" \t")
        if not stripped:
            return BLANK
        first = stripped[0]
    if first == "#":
        return make_comment_line("comment", raw.strip(" \t"))
    eq = raw.find("=")
    if eq < 0:
        return False
    head = raw[:eq]
    if head in heads:
        found = heads[head]
    else:  # what the text before '=' holds: the file name, its column, what is wrong with it
        name = head.strip(" \t")
        found = (None if not FILENAME_RE.match(name) else
                 (name, len(head) - len(head.lstrip(" \t")) + 1,
                  file_name_problem(name, extensions)))
        if len(heads) < MEMO:
            heads[head] = found
    if found is None:
        return False
    name, file_col, bad_name = found
    rest = raw[eq + 1:]
    if bad_name is not None:
        diags.extend(problems_to_diagnostics((bad_name,), file=file, line=number,
                                             column=file_col, source_line=raw))
    tail = tails.get(rest)
    if tail is None:
        tail = _read_tail(rest, limits)
        if tail is None:
            return False
        if len(tails) < MEMO:
            tails[rest] = tail
    if bad_name is not None:
        return None
    model, offset, problems, comment = tail
    trig_col = eq + 2 + offset
    if problems:
        diags.extend(problems_to_diagnostics(problems, file=file, line=number, column=trig_col,
                                             source_line=raw))
    return new_row(RuleRow, (number, file_col, trig_col, raw, name, model, comment))


# -- the whole-line shortcut ------------------------------------------------------------------
# Most lines of a big file are `name.ext = trigger` with a plain name. One regex takes the
# blanks, a name that is surely safe, the `=` and the blanks after it; what follows is the
# trigger (and any comment), read once per distinct text. Lines it does not take go through
# `read_line` as before. The property tests hold `parse_config` to the grammar on every line;
# `test_fast_head_agrees_with_read_line` holds this shortcut to `read_line` itself.

_SAFE_EXTENSION = re.compile(r"\.[a-z0-9_]+\Z")


@lru_cache(maxsize=32)
def fast_head(extensions: tuple[str, ...]) -> Callable[[str], re.Match[str] | None] | None:
    """The `match` of the regex that takes the start of a rule line up to its trigger, group 1
    the file name, for names with one of `extensions` (the built-in ones a parse accepts);
    None if none of them fits the regex.

    A name it takes is what `file_name_problem` accepts without a word: it starts with a
    letter, digit or `_`, holds only those, `-` and single dots, and ends with a known
    extension (lower-case ASCII here, matched in any ASCII case as `.lower()` compares)."""
    exts = sorted({e[1:] for e in extensions if _SAFE_EXTENSION.match(e)}, key=len,
                  reverse=True)
    if not exts:
        return None
    alternatives = "|".join(re.escape(e) for e in exts)
    return re.compile(r"[ \t]*([A-Za-z0-9_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*"
                      rf"\.(?ai:{alternatives}))[ \t]*=[ \t]*").match


#: What the text after a rule line's `=` and its blanks holds, for the shortcut: the trigger
#: (a lone event as its row), its problems (offsets into the trigger), the comment, the
#: trigger's canonical text.
FastTail = tuple[TriggerModel | TriggerRow, tuple[Problem, ...], str | None, str]


def fast_tail(after: str, max_depth: int, *, models: bool = False) -> FastTail | None:
    """Read the text after `=` and its blanks; None when the shortcut leaves the line to
    `read_line` (no trigger, a bad one, or a carriage return). The line is known to be within
    the length limit, so only the nesting limit is left to check. The trigger is a plain row
    (`_fast_rows`) unless `models` asks for its model (a document holds models)."""
    cut = _COMMENT_START.search(after) if "#" in after else None
    if cut is None:
        trigger, comment = after.rstrip(" \t"), None
    else:
        trigger = after[:cut.start()].rstrip(" \t")
        comment = after[cut.start():].strip(" \t")
        if "\r" in comment:  # the grammar's COMMENT holds none: `read_line` leaves the line
            return None
    m = match_simple_event(trigger)
    if m is not None:  # most triggers: one event, built here without the trigger cache
        event = simple_event_row(m)
        if event is not None:
            return (event_model(event[0]) if models else event[0]), event[1], comment, event[2]
    if not trigger or "\r" in trigger or ("(" in trigger and too_deep(trigger, max_depth)):
        return None
    compound = parse_compound_row(trigger)  # as `cached_trigger` would, without its cache
    if compound is not None:
        found, problems = compound
        return (row_model(found) if models else found), problems, comment, found.format()
    model, problems = cached_trigger(trigger)
    if model is None:
        return None
    return model, problems, comment, model.format()
