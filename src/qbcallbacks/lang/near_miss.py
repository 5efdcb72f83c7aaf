"""Warnings for words that are almost a keyword, and labels that can never match.

A trigger such as `compelte-job-self` is valid (user-defined event names are allowed), so the
parser accepts it and the callback silently never fires. These checks warn when a name or a
context is a small edit away from a built-in, or when a label holds characters no job label
can have or mixes letters of scripts that look alike. `check` and the language server both run
them, and `fix_for` gives the replacement an editor offers for any diagnostic that has one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from itertools import filterfalse
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from ..errors import Diagnostic, make_diagnostic
from ..model.triggers import BUILTIN_NAMES, EventPattern
from ._fast_rows import EventRow, TriggerRow
from .config import ParsedConfig, RuleRow

if TYPE_CHECKING:
    from .outline import Piece
    from .trigger import TriggerModel

_CONTEXT_KEYWORDS: tuple[str, ...] = ("self", "parent")
_SORTED_NAMES: tuple[str, ...] = tuple(sorted(BUILTIN_NAMES))
#: Letters of these scripts that look like Latin ones, mapped to the Latin letter they imitate.
_CONFUSABLE: dict[str, str] = dict(zip(
    "аеорсухіјѕԁԛԝАВЕКМНОРСТХІЈЅαορτυνικΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdqwABEKMHOPCTXIJSaoptuvikABEZHIKMNOPTYX", strict=True))


def distance(a: str, b: str) -> int:
    """Edit distance counting a swap of two neighbours as one edit (optimal string alignment)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def nearest(word: str, keywords: Iterable[str]) -> str | None:
    """The keyword `word` (any case) is a slip of, or None.

    Short keywords (up to five letters) allow one substitution or swap and no change of length,
    so ordinary names such as `shelf` or `undone` are not taken for `self` or `done`; longer ones
    allow two edits.
    """
    low = word.lower()
    size = len(low)
    best: tuple[int, str] | None = None
    for key, key_size, slack, absent in _prepared(tuple(keywords)):
        if low == key:
            return None
        # Cheap bounds first: the length difference, and the letters `key` does not have.
        if abs(size - key_size) > slack or len(low.translate(absent)) > max(slack, 1):
            continue
        d = distance(low, key)
        if (d == 1 if slack == 0 else d <= 2) and (best is None or d < best[0]):
            best = (d, key)
    return None if best is None else best[1]


@lru_cache(maxsize=64)
def _prepared(keywords: tuple[str, ...]) -> tuple[tuple[str, int, int, dict[int, None]], ...]:
    """Per keyword: its length, the length change allowed (none up to five letters, else two)
    and a table that deletes its letters. A letter of a word that `key` does not have needs
    its own deletion or substitution, so their count bounds the distance from below and most
    words are turned away without the distance table."""
    return tuple((key, len(key), 0 if len(key) <= 5 else 2, dict.fromkeys(map(ord, key)))
                 for key in keywords)


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    try:
        return unicodedata.name(ch).split()[0]
    except ValueError:
        return None


def label_problem(label: str) -> tuple[str, str, str | None] | None:
    """(code, message, replacement) for a context label that can never match, or None."""
    if label.isascii() and label.isprintable() and " " not in label:
        return None  # no control or blank character, and every letter is Latin
    for ch in label:
        if unicodedata.category(ch)[0] in "CZ":
            name = unicodedata.name(ch, "unnamed")
            return ("QCB223", f"label {label!r} contains U+{ord(ch):04X} ({name}), which no job "
                    "label can hold; the event never fires", None)
    scripts = {s for s in map(_script, label) if s is not None}
    if len(scripts) > 1 and "LATIN" in scripts:
        latin = "".join(_CONFUSABLE.get(ch, ch) for ch in label)
        others = ", ".join(sorted(s.title() for s in scripts - {"LATIN"}))
        hint = (f"; did you mean '{latin.lower()}'?" if latin.lower() in _CONTEXT_KEYWORDS
                else "")
        fix = latin.lower() if hint else (latin if latin.isascii() else None)
        return ("QCB222", f"label {label!r} mixes Latin with {others} letters that look alike; "
                f"it matches no label typed in Latin{hint}", fix)
    return None


@lru_cache(maxsize=4096)
def word_warning(kind: str, word: str) -> tuple[str, str] | None:
    """(code, message) for one event name or context, or None; cached, since a file repeats
    a few words on every line."""
    if kind == "name":
        if word.lower() in BUILTIN_NAMES:
            return None
        near = nearest(word, _SORTED_NAMES)
        if near is None:
            return None
        return ("QCB220", f"event name {word!r} is not a built-in event and only fires if a "
                f"script raises it; did you mean '{near}'?")
    if kind != "context" or word.isdigit():
        return None
    problem = label_problem(word)
    if problem is not None:
        return problem[0], problem[1]
    near = nearest(word, _CONTEXT_KEYWORDS)
    if near is None:
        return None
    return "QCB221", f"context {word!r} is read as a job label; did you mean '{near}'?"


#: The `match` of a regex that takes a context `word_warning` surely passes in silence,
#: decided without its cache (a file of distinct job labels would miss it on every line):
#: digits, or a plain ASCII label (no control or blank character, so no label problem) that
#: cannot be a slip of `self` or `parent`: a slip stays within 4 to 8 characters and has at
#: most two outside the keyword, hence outside the letters of both keywords. Each branch is
#: linear: the letter classes of the last one are disjoint.
_quiet_context = re.compile(
    r"[0-9]*\Z|(?=[!-~]*\Z)(?:[!-~]{0,3}|[!-~]{9,}"
    r"|(?:[selfparntSELFPARNT]*[^selfparntSELFPARNT]){3}[!-~]*)\Z").match


def piece_warnings(pieces: Iterable[Piece]) -> list[tuple[str, str, Piece]]:
    """(code, message, piece) for every near-miss among the pieces of one trigger."""
    out: list[tuple[str, str, Piece]] = []
    for p in pieces:
        found = word_warning(p.kind, p.text) if p.kind in ("name", "context") else None
        if found is not None:
            out.append((found[0], found[1], p))
    return out


def near_miss_diagnostics(parsed: ParsedConfig) -> list[Diagnostic]:
    """Near-miss warnings for the rule lines that parsed.

    The trigger models say whether a line has a suspect word at all (almost never); only then
    is the line cut into pieces to place the warning.
    """
    return near_miss_lines(parsed.file, ((s.line, s.source_line, s.rule.trigger)
                                         for s in parsed.rules))


def near_miss_rows(file: str, rows: list[RuleRow]) -> list[Diagnostic]:
    """:func:`near_miss_diagnostics` for the rows of :func:`~.config.scan_config`.

    The words of the lone events are judged once each, from their sets; when none warns,
    only the compound triggers' lines are looked at one by one."""
    triggers = list(map(itemgetter(5), rows))
    events = [t for t in triggers if type(t) is EventRow or type(t) is EventPattern]
    if any(word_warning("name", w or "") for w in set(map(_NAME, events))) or any(
            word_warning("context", c)
            for c in filterfalse(_quiet_context, set(filter(None, map(_CONTEXT, events))))):
        kept: Iterable[RuleRow] = rows
    elif len(events) == len(triggers):
        return []
    else:
        kept = [r for r in rows if type(r[5]) is not EventRow and type(r[5]) is not EventPattern]
    return near_miss_lines(file, ((r.line, r.source_line, r.trigger) for r in kept))


_NAME, _CONTEXT = attrgetter("name"), attrgetter("context")


def near_miss_lines(file: str, lines: Iterable[tuple[int, str, TriggerModel | TriggerRow]],
                    ) -> list[Diagnostic]:
    """Near-miss warnings for rule lines given as (line number, text, trigger)."""
    diags: list[Diagnostic] = []
    quiet = _quiet_context
    for number, source_line, trigger in lines:
        if type(trigger) is EventPattern or type(trigger) is EventRow:  # most lines: one event
            context = trigger.context
            if not (word_warning("name", trigger.name or "")
                    or (context and not quiet(context) and word_warning("context", context))):
                continue
        elif not any(word_warning("name", e.name or "") or word_warning("context", e.context or "")
                     for e in trigger.events()):
            continue
        from .outline import outline_config_line  # placing a warning is rare: load it then

        outline = outline_config_line(number, source_line)
        for code, message, p in piece_warnings(outline.pieces):
            diags.append(make_diagnostic(code, message, file=file, line=number,
                                         column=p.start + 1, end_column=p.end + 1,
                                         severity="warning", source_line=source_line))
    return diags


_DID_YOU_MEAN = re.compile(r"did you mean '([^']*)'\?")


def fix_for(diagnostic: Diagnostic, covered: str) -> str | None:
    """The text that should replace the diagnostic's span (`covered`), or None if no fix.

    An empty string deletes the span; a duplicate line (QCB202) is deleted by the caller.
    """
    if diagnostic.code == "QCB203":
        return ""
    m = _DID_YOU_MEAN.search(diagnostic.message)
    if m is not None and diagnostic.code in ("QCB103", "QCB220", "QCB221", "QCB222", "QCB301"):
        return m.group(1)
    if diagnostic.code == "QCB222":
        latin = "".join(_CONFUSABLE.get(ch, ch) for ch in covered)
        return latin if latin.isascii() and latin != covered else None
    return None
