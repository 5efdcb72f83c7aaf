"""`check --fix`: the language server's quick fixes, applied to the files on disk.

A fix is safe when the text it replaces means nothing yet (an unknown event type or qcb command
makes the line or the program invalid, so nothing runs from it); it is unsafe when the text is
valid and the fix changes what fires: a custom event name or label close to a keyword may be
deliberate, an extra on a job event or a duplicate line changes how often or whether a callback
runs. Unsafe fixes are applied only with `--unsafe-fixes`, as ruff does.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..config.load import CONFIG_NAME
from ..errors import Diagnostic, SourceError
from ..lang.source import read_source_file, split_lines

SAFE_FIXES: frozenset[str] = frozenset({"QCB103", "QCB301"})
UNSAFE_FIXES: frozenset[str] = frozenset({"QCB202", "QCB203", "QCB220", "QCB221", "QCB222"})

Edit = tuple[int, int, str]  # start offset, end offset, new text


def fixable(d: Diagnostic, *, unsafe: bool) -> bool:
    """Whether `--fix` (with `unsafe`, `--unsafe-fixes` too) may have a fix for `d`."""
    return d.code in SAFE_FIXES or (unsafe and d.code in UNSAFE_FIXES)


def has_fix(d: Diagnostic) -> bool:
    """Whether the quick fix of `d` exists, judged from the finding alone: a suggestion in its
    message, or a code whose fix needs none (a stray extra, a duplicate line)."""
    if not _editable(d.file):
        return False
    return d.code in ("QCB202", "QCB203") or (
        (d.code in SAFE_FIXES or d.code in UNSAFE_FIXES) and "did you mean '" in d.message)


def fixable_counts(diagnostics: Iterable[Diagnostic]) -> tuple[int, int]:
    """How many findings `--fix` would fix, and how many more `--unsafe-fixes` would."""
    safe = unsafe = 0
    for d in diagnostics:
        if has_fix(d):
            if d.code in SAFE_FIXES:
                safe += 1
            else:
                unsafe += 1
    return safe, unsafe


def _editable(file: str) -> bool:
    return os.path.basename(file) == CONFIG_NAME or Path(file).suffix.lower() == ".qcb"


def _edits(text: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """The quick fixes of `diagnostics` as offsets into `text`; none when the language
    server's idea of the lines differs from the parsers' (a form feed or a U+2028 in a line)."""
    from ..lsp.edits import code_action_edits

    bom = 1 if text.startswith("\ufeff") else 0
    lines = split_lines(text)
    if text[bom:].splitlines() != lines:
        return []
    starts = [bom]
    for line in text[bom:].split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    starts[-1] = min(starts[-1], len(text))

    def offset(line: int, column: int) -> int:
        return min(starts[min(line, len(starts) - 1)] + column, len(text))

    out: list[Edit] = []
    for d in diagnostics:
        found = code_action_edits(text, d.code, d.message, (d.line - 1, d.column - 1),
                                  (d.end_line - 1, d.end_column - 1))
        if found is not None:
            _, (start, end, new) = found
            out.append((offset(*start), offset(*end), new))
    return out


def _apply(text: str, edits: list[Edit]) -> tuple[str, int]:
    """`text` with the edits that do not overlap an earlier one applied, and how many."""
    applied = 0
    last = len(text) + 1
    for start, end, new in sorted(set(edits), reverse=True):
        if end > last or (end == last and start == end):
            continue
        text = text[:start] + new + text[end:]
        last = start
        applied += 1
    return text, applied


def fix_files(diagnostics: Iterable[Diagnostic], *, unsafe: bool) -> int:
    """Apply the fixes of `diagnostics` to their files; the number of fixes applied."""
    from .fmt import _write_atomically

    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    for d in diagnostics:
        if fixable(d, unsafe=unsafe) and _editable(d.file):
            by_file[d.file].append(d)
    total = 0
    for file, found in by_file.items():
        try:
            text = read_source_file(file)
        except (SourceError, OSError):
            continue
        new, applied = _apply(text, _edits(text, found))
        if applied and new != text:
            _write_atomically(Path(file), new)
            total += applied
    return total
