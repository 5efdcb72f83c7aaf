"""A tolerant outline of a file: every line's pieces with their columns, errors or not.

The parsers keep only lines that are right; an editor works on half-written text and still
wants to know where the file name, each event part and each operator of every line stand.
The trigger scanner here splits text the way the grammar's contextual lexer does (a test
compares it with Lark's own tokens on every vector), but never fails: text the grammar would
reject is still cut into words, so hover, completion and highlighting keep working.
Pieces are plain named tuples, not pydantic models: a 1,000-line file has tens of thousands of
them and they are rebuilt on every keystroke.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, NamedTuple

from .source import split_lines

PieceKind = Literal["file", "equals", "name", "type", "context", "extra", "dash", "operator",
                    "paren", "comment", "command", "error"]
LineKind = Literal["blank", "comment", "rule", "command", "bad"]


class Piece(NamedTuple):
    """One token of a line: kind, 0-based start and end columns (in str characters), text."""

    kind: PieceKind
    start: int
    end: int
    text: str


class LineOutline(NamedTuple):
    """One physical line (1-based `number`) and its pieces, left to right."""

    number: int
    kind: LineKind
    text: str
    pieces: tuple[Piece, ...]

    def piece_at(self, column: int) -> Piece | None:
        """The piece under 0-based `column` (its end counts, so a cursor after a word hits)."""
        for p in self.pieces:
            if p.start <= column <= p.end and p.kind not in ("dash", "equals"):
                return p
        return None

    def first(self, kind: PieceKind) -> Piece | None:
        return next((p for p in self.pieces if p.kind == kind), None)

    def atoms(self) -> list[tuple[int, int]]:
        """(start, end) columns of each event of the trigger: its name/type piece through its
        last dash, context or extra."""
        spans: list[tuple[int, int]] = []
        for p in self.pieces:
            if p.kind not in _EVENT_PARTS:
                continue
            if spans and spans[-1][1] == p.start:  # the parts of one event touch
                spans[-1] = (spans[-1][0], p.end)
            else:
                spans.append((p.start, p.end))
        return spans


_EVENT_PARTS = frozenset({"name", "type", "context", "extra", "dash"})
_TRIGGER_WORD = re.compile(r"(?P<sym>&&|\|\|)|(?P<lpar>\()|(?P<rpar>\))|(?P<blank>[ \t]+)"
                           r"|(?P<word>[^ \t()&|]+)|(?P<bad>[&|])")
_GLOBAL_TIMED = re.compile(r"(?ai:global(?:time|repeat))-")
_COMMENT_START = re.compile(r"[ \t]#")


def scan_trigger(text: str, base: int = 0) -> list[Piece]:
    """Cut a trigger into pieces; columns are offsets into `text` plus `base`."""
    out: list[Piece] = []
    matches = list(_TRIGGER_WORD.finditer(text))
    for i, m in enumerate(matches):
        kind, s, e = m.lastgroup, m.start() + base, m.end() + base
        value = m.group()
        if kind == "sym":
            out.append(Piece("operator", s, e, value))
        elif kind in ("lpar", "rpar"):
            out.append(Piece("paren", s, e, value))
        elif kind == "bad":
            out.append(Piece("error", s, e, value))
        elif kind == "word":
            word_op = (value.lower() in ("and", "or") and 0 < i < len(matches) - 1
                       and matches[i - 1].lastgroup == "blank"
                       and matches[i + 1].lastgroup == "blank")
            if word_op:
                out.append(Piece("operator", s, e, value))
            else:
                out.extend(_event_pieces(value, s))
    return out


def _event_pieces(word: str, start: int) -> list[Piece]:
    """`name-type-context[-extra]`, or a global form, as pieces; the first three dashes split."""
    if word.lower() == "global":
        return [Piece("type", start, start + len(word), word)]
    timed = _GLOBAL_TIMED.match(word)
    if timed is not None:
        t_end = start + timed.end() - 1
        return [Piece("type", start, t_end, word[:timed.end() - 1]),
                Piece("dash", t_end, t_end + 1, "-"),
                Piece("extra", t_end + 1, start + len(word), word[timed.end():])]
    parts = word.split("-", 3)
    kinds: tuple[PieceKind, ...] = ("name", "type", "context", "extra")
    out: list[Piece] = []
    pos = start
    for n, part in enumerate(parts):
        if n:
            out.append(Piece("dash", pos, pos + 1, "-"))
            pos += 1
        if part:
            out.append(Piece(kinds[n], pos, pos + len(part), part))
        pos += len(part)
    return out


def outline_config_line(number: int, raw: str) -> LineOutline:
    """The outline of one `callbacks.conf` line."""
    kind, pieces = _cached_pieces(raw) if len(raw) <= _CACHED_LINE else _config_pieces(raw)
    return LineOutline(number, kind, raw, pieces)


#: Lines up to this long are cached by their text (an editor re-outlines a file whose lines
#: rarely change); longer ones, rare and possibly hostile, are not kept.
_CACHED_LINE = 512


def _config_pieces(raw: str) -> tuple[LineKind, tuple[Piece, ...]]:
    stripped = raw.lstrip(" \t")
    lead = len(raw) - len(stripped)
    if not stripped.strip(" \t"):
        return "blank", ()
    if stripped[0] == "#":
        return "comment", (Piece("comment", lead, len(raw), stripped),)
    eq = raw.find("=")
    if eq < 0:
        word = stripped.split()[0]
        return "bad", (Piece("file", lead, lead + len(word), word),)
    pieces: list[Piece] = []
    name = raw[:eq].strip(" \t")
    if name:
        pieces.append(Piece("file", lead, lead + len(name), name))
    pieces.append(Piece("equals", eq, eq + 1, "="))
    rest = raw[eq + 1:]
    cut = _COMMENT_START.search(rest)
    if cut is None and rest.lstrip(" \t").startswith("#"):
        cut = re.compile(r"#").search(rest)
        trigger_end = cut.start() if cut else len(rest)
    else:
        trigger_end = len(rest) if cut is None else cut.start()
    pieces.extend(scan_trigger(rest[:trigger_end], eq + 1))
    if cut is not None:
        c = eq + 1 + rest.index("#", cut.start())
        pieces.append(Piece("comment", c, len(raw), raw[c:]))
    return "rule", tuple(pieces)


_cached_pieces = lru_cache(maxsize=16384)(_config_pieces)


def outline_config(text: str) -> tuple[LineOutline, ...]:
    """Every line of a `callbacks.conf`, however broken."""
    return tuple(outline_config_line(n, raw) for n, raw in enumerate(split_lines(text), 1))


def outline_qcb(text: str) -> tuple[LineOutline, ...]:
    """Every line of a `.qcb` file: a command word, other words, a comment."""
    out: list[LineOutline] = []
    for number, raw in enumerate(split_lines(text), 1):
        stripped = raw.lstrip(" \t")
        lead = len(raw) - len(stripped)
        if not stripped.strip(" \t"):
            out.append(LineOutline(number, "blank", raw, ()))
            continue
        if stripped[0] == "#":
            out.append(LineOutline(number, "comment", raw,
                                   (Piece("comment", lead, len(raw), stripped),)))
            continue
        cut = _COMMENT_START.search(raw)
        body_end = len(raw) if cut is None else cut.start()
        pieces = [Piece("command" if i == 0 else "error", m.start(), m.end(), m.group())
                  for i, m in enumerate(re.finditer(r"[^ \t]+", raw[:body_end]))]
        if cut is not None:
            pieces.append(Piece("comment", cut.start() + 1, len(raw), raw[cut.start() + 1:]))
        out.append(LineOutline(number, "command", raw, tuple(pieces)))
    return tuple(out)
