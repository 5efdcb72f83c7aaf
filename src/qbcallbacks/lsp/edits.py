"""Edits and token streams the server sends: formatting, quick fixes, semantic tokens.

Semantic tokens are the outline's pieces, which tests hold equal to the Lark grammar's own
tokens on every vector and on generated triggers; a half-written line still gets its tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import make_diagnostic
from ..lang import parse_config, parse_qcb
from ..lang.near_miss import fix_for
from ..lang.outline import LineOutline
from ..model.triggers import BUILTIN_NAMES
from ..runtimes.registry import extensions as runtime_extensions
from .analysis import DocKind

#: The semantic token legend: index in this tuple is the token type number sent.
TOKEN_TYPES: tuple[str, ...] = ("string", "event", "keyword", "variable", "number",
                                "operator", "comment", "function")
TOKEN_MODIFIERS: tuple[str, ...] = ("defaultLibrary",)
_TYPE_OF = {"file": 0, "name": 1, "type": 2, "context": 3, "extra": 4, "operator": 5,
            "paren": 5, "comment": 6, "command": 7}

Pos = tuple[int, int]


def format_edit(kind: DocKind, text: str) -> str | None:
    """The canonical text of a document, or None when it has errors (as `format` refuses)."""
    if kind == "qcb":
        program = parse_qcb(text).program
        return None if program is None else program.format()
    extensions = tuple(f".{ext}" for ext in runtime_extensions())
    document = parse_config(text, extensions=extensions).document
    return None if document is None else document.format()


def code_action_edits(text: str, code: str, message: str, start: Pos, end: Pos,
                      ) -> tuple[str, tuple[Pos, Pos, str]] | None:
    """A quick fix for one diagnostic: its title and (start, end, new text), or None."""
    lines = text.lstrip("\ufeff").splitlines()
    if start[0] >= len(lines):
        return None
    if code == "QCB202":
        return "Remove the duplicate line", ((start[0], 0), (start[0] + 1, 0), "")
    if start[0] != end[0]:
        return None
    covered = lines[start[0]][start[1]:end[1]]
    fix = fix_for(make_diagnostic(code, message), covered)
    if fix is None:
        return None
    title = f"Remove '{covered}'" if fix == "" else f"Replace '{covered}' with '{fix}'"
    return title, (start, end, fix)


def _is_builtin(kind: str, text: str) -> bool:
    low = text.lower()
    return (kind == "type" or (kind == "name" and low in BUILTIN_NAMES)
            or (kind == "context" and low in ("self", "parent")))


def semantic_data(outline: Sequence[LineOutline],
                  units: Callable[[int, int], int]) -> list[int]:
    """The LSP relative encoding of every piece; `units(line, col)` converts a 0-based str
    column to client units."""
    data: list[int] = []
    last_line, last_start = 0, 0
    for ln in outline:
        line = ln.number - 1
        for p in ln.pieces:
            token = _TYPE_OF.get(p.kind)
            if token is None:
                continue
            text = p.text.strip(" \t")
            if not text:
                continue
            lead = len(p.text) - len(p.text.lstrip(" \t"))
            s = units(line, p.start + lead)
            length = units(line, p.start + lead + len(text)) - s
            delta_start = s - last_start if line == last_line else s
            data += [line - last_line, delta_start, length, token,
                     1 if _is_builtin(p.kind, text) else 0]
            last_line, last_start = line, s
    return data
