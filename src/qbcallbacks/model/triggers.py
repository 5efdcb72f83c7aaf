"""Trigger expressions as data: event patterns joined by all-of / any-of.

The models are canonical by construction: keywords are lower-cased and nested operators of the
same kind are flattened, so two spellings of one trigger build equal models and `format` gives
one text for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Literal, get_args

from .._records import check_type, maker, record
from ..errors import RecordError

EventType = Literal[
    "job", "subjob", "work", "host", "time", "repeat", "global", "globaltime", "globalrepeat"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
#: Types written in the short form `type[-extra]`, with no name or context.
GLOBAL_TYPES: frozenset[str] = frozenset({"global", "globaltime", "globalrepeat"})
#: Types whose extra names instants: `<time>` (time, globaltime) or `<time>-<interval>`.
TIME_TYPES: frozenset[str] = frozenset({"time", "repeat", "globaltime", "globalrepeat"})
REPEAT_TYPES: frozenset[str] = frozenset({"repeat", "globalrepeat"})


def time_extra(type_: str, extra: str) -> tuple[float, float] | str:
    """The (first instant, interval) a time-type extra names, interval 0 for a one-shot; or,
    when no instant can ever match it, the reason in words (for the diagnostic)."""
    parts = extra.split("-")
    if type_ in REPEAT_TYPES:
        if len(parts) != 2:
            example = ("globalrepeat-1000000-60" if type_ == "globalrepeat"
                       else "dummy-repeat-self-1000000-60")
            return (f"a {type_} extra is <time>-<interval> in seconds, as in {example}; "
                    f"{extra!r} has no interval")
        try:
            start, interval = float(parts[0]), float(parts[1])
        except ValueError:
            return f"{extra!r} is not <time>-<interval> with two numbers"
        if not interval > 0 or interval == float("inf"):
            return f"the interval {parts[1]!r} is not a positive number of seconds"
    else:
        try:
            start, interval = float(extra), 0.0
        except ValueError:
            return f"a {type_} extra is a Qube time (a number of seconds), not {extra!r}"
    if start != start or abs(start) == float("inf"):
        return f"{parts[0]!r} is not a Qube time"
    return start, interval


def item_key(type_: str, extra: str | None) -> str | None:
    """The form in which an event's item and an atom's extra are compared: a subjob id that
    is all digits is compared as a number (`02` is subjob 2), everything else as written."""
    if type_ == "subjob" and extra is not None and extra.isdigit() and extra.isascii():
        return str(int(extra))
    return extra


#: Event names the supervisor raises itself; matched case-insensitively.
BUILTIN_NAMES: frozenset[str] = frozenset({
    "complete", "done", "submit", "killed", "blocked", "failed", "running", "waiting",
    "assigned", "removed", "modified", "dummy", "timeout",
})
#: Event names that also count as `done`.
DONE_NAMES: frozenset[str] = frozenset({"complete", "failed", "killed"})
ContextKind = Literal["self", "parent", "id", "label"]

# These mirror the terminals of trigger.lark; a property test keeps the two in step.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
CONTEXT_RE = re.compile(r"[^\s\x00-\x1f\x7f()&|#*=-]+\Z")
EXTRA_RE = re.compile(r"(?:\*|[^\s\x00-\x1f\x7f()&|*]+)\Z")


#: Each keyword to itself: a normalised keyword is this one string, not a copy per event.
KEYWORD_NAMES: dict[str, str] = {n: n for n in BUILTIN_NAMES}
_KEYWORD_CONTEXTS: dict[str, str] = {"self": "self", "parent": "parent"}
#: Each event type's spelling to itself, for the same reason.
TYPE_WORDS: dict[str, str] = {t: t for t in EVENT_TYPES}


def normalise_name(name: str) -> str:
    """Built-in event names are keywords (any case); user-defined names keep their case."""
    return KEYWORD_NAMES.get(name.lower(), name) if name.isascii() else name


def normalise_context(context: str) -> str:
    return _KEYWORD_CONTEXTS.get(context.lower(), context) if context.isascii() else context


@record
class EventPattern:
    """One `name-type-context[-extra]` atom, or a short global form (`name` and `context` None).

    `extra` None means the extra was omitted, which matches any item, like `*`. The
    constructor checks and normalises its values (keywords lower-cased); the parsers build
    patterns with :data:`make_event`, from text the grammar has already checked.
    """

    kind: Literal["event"] = "event"
    name: str | None
    type: EventType
    context: str | None
    extra: str | None = None

    def __post_init__(self) -> None:
        for field in ("name", "type", "context", "extra"):
            check_type("EventPattern", field, getattr(self, field), str,
                       *(() if field == "type" else (type(None),)))
        if self.kind != "event":
            raise RecordError(f"an EventPattern's kind is 'event', not {self.kind!r}")
        typ = self.type.lower() if self.type.isascii() else self.type
        if typ not in TYPE_WORDS:
            raise RecordError(f"{self.type!r} is not an event type ({', '.join(EVENT_TYPES)})")
        name, context, extra = self.name, self.context, self.extra
        if name is not None:
            if not NAME_RE.match(name):
                raise RecordError(f"event name {name!r} is not an identifier")
            name = normalise_name(name)
        if context is not None:
            if not CONTEXT_RE.match(context):
                raise RecordError(f"context {context!r} holds a character a context "
                                  "cannot hold")
            context = normalise_context(context)
        if extra is not None and not EXTRA_RE.match(extra):
            raise RecordError(f"extra {extra!r} must be '*' or have no blanks, parentheses, "
                              "& or |")
        _check_shape(name, typ, context, extra)
        for field, value in (("type", TYPE_WORDS[typ]), ("name", name), ("context", context)):
            object.__setattr__(self, field, value)

    @property
    def context_kind(self) -> ContextKind | None:
        """How the context selects the job an event is about, relative to the attached job."""
        ctx = self.context
        if ctx is None:
            return None
        if ctx == "self":
            return "self"
        if ctx == "parent":
            return "parent"
        return "id" if ctx.isdigit() and ctx.isascii() else "label"

    def format(self) -> str:
        head: str = (self.type if self.name is None
                     else f"{self.name}-{self.type}-{self.context}")
        return head if self.extra is None else f"{head}-{self.extra}"

    def events(self) -> Iterator[EventPattern]:
        yield self


@record
class _Compound:
    operands: tuple[Trigger, ...]

    def __post_init__(self) -> None:
        name = type(self).__name__
        check_type(name, "operands", self.operands, tuple)
        for op in self.operands:
            check_type(name, "operands item", op, EventPattern, AllOf, AnyOf)
        if len(self.operands) < 2:
            raise RecordError(f"{name} joins at least two operands, not {len(self.operands)}")
        if any(type(op) is type(self) for op in self.operands):
            flat: list[Trigger] = []
            for op in self.operands:
                flat.extend(op.operands if type(op) is type(self) else (op,))
            object.__setattr__(self, "operands", tuple(flat))

    def events(self) -> Iterator[EventPattern]:
        for op in self.operands:
            yield from op.events()


@record
class AllOf(_Compound):
    """`a && b`: true once every operand has happened since the last firing."""

    kind: Literal["and"] = "and"

    def __post_init__(self) -> None:
        if self.kind != "and":
            raise RecordError(f"an AllOf's kind is 'and', not {self.kind!r}")
        _Compound.__post_init__(self)  # no zero-argument super() in a slots dataclass

    def format(self) -> str:
        return " && ".join(
            f"({op.format()})" if isinstance(op, AnyOf) else op.format() for op in self.operands
        )


@record
class AnyOf(_Compound):
    """`a || b`: true once any operand has happened."""

    kind: Literal["or"] = "or"

    def __post_init__(self) -> None:
        if self.kind != "or":
            raise RecordError(f"an AnyOf's kind is 'or', not {self.kind!r}")
        _Compound.__post_init__(self)  # no zero-argument super() in a slots dataclass

    def format(self) -> str:
        return " || ".join(op.format() for op in self.operands)


#: A trigger: one event pattern, or patterns joined by all-of / any-of (told apart by `kind`).
Trigger = EventPattern | AllOf | AnyOf
TriggerNode = Trigger

#: `EventPattern` from (kind, name, type, context, extra), already canonical; unchecked.
make_event = maker(EventPattern)
#: `AllOf` / `AnyOf` from (operands, kind), operands already flat; unchecked.
make_all_of = maker(AllOf)
make_any_of = maker(AnyOf)


def _check_shape(name: str | None, typ: str, context: str | None, extra: str | None) -> None:
    """What no event pattern can be, whatever its parts: the grammar's whole-atom rules."""
    short = name is None
    if short != (context is None):
        raise RecordError("name and context are both given or both omitted")
    if name is not None and name.lower() in ("globaltime", "globalrepeat"):
        raise RecordError(f"{name!r} starts the short global form, not an event name")
    if short and typ not in GLOBAL_TYPES:
        raise RecordError(f"only global types have a short form, not {typ!r}")
    if short and (typ == "global") != (extra is None):
        raise RecordError("short `global` takes no extra; globaltime and globalrepeat need one")
    if typ == "job" and extra is not None:
        raise RecordError("job events take no extra")


@lru_cache(maxsize=65536)
def trigger_text(trigger: TriggerNode) -> str:
    """Canonical text of a trigger, computed once per distinct (frozen, hashable) model."""
    return trigger.format()
