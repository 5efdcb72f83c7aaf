"""The one table of what every keyword of the languages means.

Hover, completion, the near-miss warnings of `check` and `qbcallbacks grammar --vocabulary` all
read these entries, so an editor never explains a word differently from the command line.
A test checks that the table names exactly the built-in names, types and qcb commands of the
models, so a keyword cannot be added without its description.
"""

from __future__ import annotations

from typing import Literal

from ..model._base import Frozen
from ..model.documents import QCB_COMMANDS

WordKind = Literal["name", "type", "context", "operator", "command"]


class Word(Frozen):
    """One keyword: its kind, spelling (lower case) and a one-sentence meaning."""

    kind: WordKind
    word: str
    doc: str


_NAMES: dict[str, str] = {
    "complete": "the item finished successfully",
    "done": "the item finished: complete, failed or killed",
    "submit": "the job was submitted",
    "killed": "the item was killed",
    "blocked": "the item was blocked",
    "failed": "the item failed",
    "running": "the item started running",
    "waiting": "the item is waiting (for a dependency or a slot)",
    "assigned": "the item was assigned to a worker host",
    "removed": "the job was removed from the farm",
    "modified": "the job's settings were modified",
    "dummy": "a time-based event with no state change behind it (with time/repeat types)",
    "timeout": "the item ran past its time limit",
}

_TYPES: dict[str, str] = {
    "job": "a whole job; job events take no extra",
    "subjob": "one subjob (instance) of a job; the extra is a subjob id or *",
    "work": "one work item (frame, agenda item) of a job; the extra is a work name or *",
    "host": "a worker host; the extra is a host name or *",
    "time": "a moment in Qube time (Unix time minus 946702800); the extra is that time",
    "repeat": "a repeating timer; the extra is time-interval",
    "global": "any event of the supervisor, with no name or context",
    "globaltime": "globaltime-<time>: once at a Qube time, with no name or context",
    "globalrepeat": "globalrepeat-<time>-<interval>: repeatedly from a Qube time",
}

_CONTEXTS: dict[str, str] = {
    "self": "the job the callback is attached to",
    "parent": "the parent job of the job the callback is attached to (its pid)",
}

_OPERATORS: dict[str, str] = {
    "&&": "both sides must have happened (binds tighter than ||)",
    "||": "either side happening is enough",
    "and": "same as &&",
    "or": "same as ||",
    "*": "as an extra: any item",
}


def _command_doc(command: str) -> str:
    """Describe a qcb command from its spelling: action, then the level it acts on."""
    action, _, rest = command.partition("-")
    verbs = {
        "unblock": "unblock", "block": "block", "fail": "fail", "kill": "kill",
        "migrate": "migrate", "preempt": "preempt", "interrupt": "interrupt",
        "suspend": "suspend", "resume": "resume", "retry": "retry", "requeue": "requeue",
        "complete": "complete",
    }
    if action == "mail":
        what = {"status": "the job's status", "license-status": "the license status",
                "report-status": "a status report",
                "subjob-status": "the triggering subjob's status"}[rest]
        return f"mail {what} to the job's owner"
    if rest.startswith("subjob-self"):
        target = ("only the triggering subjob" if rest.endswith("single")
                  else "the subjob of the callback's job with the triggering subjob's id")
    elif rest.startswith("work-self"):
        target = "the work item of the callback's job named like the triggering work item"
    else:
        target = "the callback's own job"
    return f"{verbs[action]} {target}"


def vocabulary() -> tuple[Word, ...]:
    """Every keyword with its meaning, grouped by kind, in a stable order."""
    words: list[Word] = []
    words += [Word(kind="name", word=w, doc=d) for w, d in _NAMES.items()]
    words += [Word(kind="type", word=w, doc=d) for w, d in _TYPES.items()]
    words += [Word(kind="context", word=w, doc=d) for w, d in _CONTEXTS.items()]
    words += [Word(kind="operator", word=w, doc=d) for w, d in _OPERATORS.items()]
    words += [Word(kind="command", word=c, doc=_command_doc(c)) for c in QCB_COMMANDS]
    return tuple(words)


def describe(kind: WordKind, word: str) -> str | None:
    """The meaning of `word` (any case) as a `kind`, or None for a user-defined word."""
    table = {"name": _NAMES, "type": _TYPES, "context": _CONTEXTS,
             "operator": _OPERATORS}.get(kind)
    if table is not None:
        return table.get(word.lower())
    low = word.lower()
    return _command_doc(low) if low in QCB_COMMANDS else None


def vocabulary_json() -> dict[str, list[dict[str, str]]]:
    """The table as JSON-ready data: kind -> list of {word, doc}."""
    out: dict[str, list[dict[str, str]]] = {}
    for w in vocabulary():
        out.setdefault(w.kind, []).append({"word": w.word, "doc": w.doc})
    return out

