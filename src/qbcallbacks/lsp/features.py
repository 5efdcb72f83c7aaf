"""What the editor asks for, answered on plain text: completion, hover, definition, symbols.

Positions here are 0-based lines and columns in str characters (code points); the server
converts them to and from the encoding the client negotiated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from ..lang.outline import LineOutline, Piece
from ..lang.source import source_file_problem
from ..lang.vocabulary import describe, vocabulary
from ..model.languages import SCRIPT_LANGUAGES, language_of
from ..runtimes.api import open_script
from .analysis import DocKind

#: How much of a script a hover reads to show its first lines.
_HEAD_BYTES = 4096
ItemKind = Literal["file", "name", "type", "context", "extra", "operator", "command"]
_WORD_START = re.compile(r"[^ \t()&|=]*\Z")
_QCB_WORD = re.compile(r"[^ \t#]*\Z")
_GLOBAL_FORMS = (("global", "any event of the supervisor"),
                 ("globaltime-", "once at a Qube time: globaltime-<time>"),
                 ("globalrepeat-", "repeatedly: globalrepeat-<time>-<interval>"))


class Item(NamedTuple):
    """A completion: its text, kind, documentation, and the column where the replaced text
    starts (the cursor is its end)."""

    label: str
    kind: ItemKind
    doc: str
    start: int


def _words(kind: str) -> list[tuple[str, str]]:
    return [(w.word, w.doc) for w in vocabulary() if w.kind == kind]


def _used(outline: Sequence[LineOutline], kind: str) -> list[str]:
    seen: dict[str, None] = {}
    for line in outline:
        for p in line.pieces:
            if p.kind == kind:
                seen.setdefault(p.text, None)
    return list(seen)


def script_files(directory: str) -> list[str]:
    """Files of the directory a rule could name: known script extensions, sorted."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(n for n in names if os.path.splitext(n)[1].lower().lstrip(".")
                  in SCRIPT_LANGUAGES and os.path.isfile(os.path.join(directory, n)))


def complete(kind: DocKind, outline: Sequence[LineOutline], line: int, column: int,
             directory: str | None) -> list[Item]:
    """Completions at 0-based (`line`, `column`)."""
    raw = outline[line].text if line < len(outline) else ""
    before = raw[:column]
    if kind == "qcb":
        m = _QCB_WORD.search(before)
        start = column - len(m.group()) if m else column
        if before[:start].strip(" \t"):
            return []
        return [Item(w, "command", d, start) for w, d in _words("command")]
    if before.lstrip(" \t").startswith("#"):
        return []
    if "=" not in before:
        named = set(_used(outline, "file"))
        start = len(before) - len(before.lstrip(" \t"))
        files = script_files(directory) if directory else []
        return [Item(n, "file", f"{language_of(n)} script, not yet in callbacks.conf", start)
                for n in files if n not in named]
    m = _WORD_START.search(before)
    word = m.group() if m else ""
    word_start = column - len(word)
    dashes = word.count("-")
    start = word_start + (word.rfind("-") + 1 if dashes else 0)
    if dashes == 0:
        previous = before[:word_start].rstrip(" \t")
        after_event = previous and previous[-1] not in "=(&|" and not re.search(
            r"(?i)[ \t](and|or)\Z", " " + previous)
        if after_event and (before[word_start - 1:word_start] in (" ", "\t") or not word):
            return [Item(w, "operator", d, start) for w, d in _words("operator") if w != "*"]
        items = [Item(w, "name", d, start) for w, d in _words("name")]
        builtins = {i.label for i in items}
        items += [Item(n, "name", "user-defined event, raised by a script", start)
                  for n in _used(outline, "name") if n.lower() not in builtins and n != word]
        return items + [Item(w, "type", d, start) for w, d in _GLOBAL_FORMS]
    if dashes == 1:
        return [Item(w, "type", d, start) for w, d in _words("type")]
    if dashes == 2:
        items = [Item(w, "context", d, start) for w, d in _words("context")]
        for c in _used(outline, "context"):
            if c.lower() in ("self", "parent") or c == word[start - word_start:]:
                continue
            doc = ("the job with this id" if c.isdigit()
                   else "a job of the same process group with this label")
            items.append(Item(c, "context", doc, start))
        return items
    if word.split("-")[1].lower() == "job":
        return []
    return [Item("*", "extra", describe("operator", "*") or "", start)]


def hover(kind: DocKind, outline: Sequence[LineOutline], line: int, column: int,
          directory: str | None) -> tuple[str, Piece] | None:
    """Markdown describing the word under the cursor, and the piece it covers."""
    if line >= len(outline):
        return None
    piece = outline[line].piece_at(column)
    if piece is None:
        return None
    if piece.kind == "file":
        return _describe_script(piece.text, directory), piece
    what = {"name": "name", "type": "type", "context": "context", "operator": "operator",
            "command": "command"}.get(piece.kind)
    if what is None:
        return None
    doc = describe(what, piece.text.strip())  # type: ignore[arg-type]
    if doc is None:
        if piece.kind == "name":
            doc = "a user-defined event: it fires only when a script raises it"
        elif piece.kind == "context":
            doc = ("the job with this id" if piece.text.isdigit()
                   else "a job label: a job of the same process group submitted with it")
        else:
            return None
    return f"**{piece.text.strip()}** ({piece.kind}): {doc}", piece


def _describe_script(name: str, directory: str | None) -> str:
    language = language_of(name) if "." in name else "unknown"
    head = f"**{name}**: {language} script"
    if directory is None:
        return head
    path = Path(directory) / name
    problem = source_file_problem(path, kind="script", root=directory)
    if problem is not None:  # a FIFO or device is never opened, a huge file never read
        return f"{head}\n\n`{path}`: {problem.message}"
    try:
        with open_script(str(path)) as f:
            start = f.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return f"{head}\n\n`{path}` (not found)"
    first = "".join(start.splitlines(keepends=True)[:5]).rstrip("\n")
    return f"{head}\n\n`{path}`\n\n```\n{first}\n```"


def definition(outline: Sequence[LineOutline], line: int, column: int,
               directory: str | None) -> str | None:
    """The path of the script named under the cursor, if it exists."""
    if directory is None or line >= len(outline):
        return None
    piece = outline[line].piece_at(column)
    if piece is None or piece.kind != "file":
        return None
    path = os.path.join(directory, piece.text)
    return path if os.path.isfile(path) else None
