"""Trigger expressions as data: event patterns joined by all-of / any-of.

The models are canonical by construction: keywords are lower-cased and nested operators of the
same kind are flattened, so two spellings of one trigger build equal models and `format` gives
one text for both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, field_validator, model_validator

from ._base import Frozen

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


class EventPattern(Frozen):
    """One `name-type-context[-extra]` atom, or a short global form (`name` and `context` None).

    `extra` None means the extra was omitted, which matches any item, like `*`.
    """

    kind: Literal["event"] = "event"
    name: str | None
    type: EventType
    context: str | None
    extra: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _lower_type(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) and value.isascii() else value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not NAME_RE.match(value):
            raise ValueError(f"event name {value!r} is not an identifier")
        return normalise_name(value)

    @field_validator("context")
    @classmethod
    def _check_context(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not CONTEXT_RE.match(value):
            raise ValueError(f"context {value!r} holds a character a context cannot hold")
        return normalise_context(value)

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: str | None) -> str | None:
        if value is not None and not EXTRA_RE.match(value):
            raise ValueError(f"extra {value!r} must be '*' or have no blanks, parentheses, & or |")
        return value

    @model_validator(mode="after")
    def _check_shape(self) -> EventPattern:
        short = self.name is None
        if short != (self.context is None):
            raise ValueError("name and context are both given or both omitted")
        if not short and self.name.lower() in ("globaltime", "globalrepeat"):  # type: ignore[union-attr]
            raise ValueError(f"{self.name!r} starts the short global form, not an event name")
        if short and self.type not in GLOBAL_TYPES:
            raise ValueError(f"only global types have a short form, not {self.type!r}")
        if short and (self.type == "global") != (self.extra is None):
            raise ValueError("short `global` takes no extra; globaltime and globalrepeat need one")
        if self.type == "job" and self.extra is not None:
            raise ValueError("job events take no extra")
        return self

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


class _Compound(Frozen):
    operands: tuple[Trigger, ...] = Field(min_length=2)

    @field_validator("operands", mode="after")
    @classmethod
    def _flatten(cls, value: tuple[Trigger, ...]) -> tuple[Trigger, ...]:
        if not any(type(op) is cls for op in value):
            return value
        flat: list[Trigger] = []
        for op in value:
            flat.extend(op.operands if isinstance(op, _Compound) and type(op) is cls else (op,))
        return tuple(flat)

    def events(self) -> Iterator[EventPattern]:
        for op in self.operands:
            yield from op.events()


class AllOf(_Compound):
    """`a && b`: true once every operand has happened since the last firing."""

    kind: Literal["and"] = "and"

    def format(self) -> str:
        return " && ".join(
            f"({op.format()})" if isinstance(op, AnyOf) else op.format() for op in self.operands
        )


class AnyOf(_Compound):
    """`a || b`: true once any operand has happened."""

    kind: Literal["or"] = "or"

    def format(self) -> str:
        return " || ".join(op.format() for op in self.operands)


Trigger = Annotated[Union[EventPattern, AllOf, AnyOf], Field(discriminator="kind")]  # noqa: UP007 - a discriminated union needs the Union spelling for the forward reference
# The forward reference to `Trigger` is resolved when a compound is first validated
# (schemas are deferred, see `Frozen`).

TriggerNode = EventPattern | AllOf | AnyOf


@lru_cache(maxsize=65536)
def trigger_text(trigger: TriggerNode) -> str:
    """Canonical text of a trigger, computed once per distinct (frozen, hashable) model."""
    return trigger.format()
