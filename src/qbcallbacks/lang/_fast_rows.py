"""Triggers as plain rows: what the hand readers build, and the models made from them.

A row holds exactly the canonical fields of its model (:class:`EventPattern`, :class:`AllOf`,
:class:`AnyOf`) in a named tuple, which costs a fraction of a model to build. The loader's
`scan_config` keeps rows until it makes the rules, one model per distinct trigger;
`parse_config` makes one per distinct trigger text as it reads. Rows have the models'
`format` and `events`, so the near-miss checks and duplicate keys read them as they read
models. `test_simple_event_row_builds_the_model` and the compound tests of
tests/lang/test_parse_fast_path.py hold each row's model to what the grammar builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Union

from ..model.triggers import AllOf, AnyOf, EventPattern, make_all_of, make_any_of, make_event

TriggerModel = EventPattern | AllOf | AnyOf


class EventRow(NamedTuple):
    """One event: a full-form one, or a short global form (`name` and `context` None)."""

    name: str | None
    type: str
    context: str | None
    extra: str | None

    def format(self) -> str:
        head = self.type if self.name is None else f"{self.name}-{self.type}-{self.context}"
        return head if self.extra is None else f"{head}-{self.extra}"

    def events(self) -> Iterator[EventRow]:
        yield self


class CompoundRow(NamedTuple):
    """Operands joined by one operator (`kind` "and" or "or"), flattened as the models are."""

    kind: str
    operands: tuple[TriggerRow, ...]

    def format(self) -> str:
        if self.kind == "or":
            return " || ".join(op.format() for op in self.operands)
        return " && ".join(f"({op.format()})" if type(op) is CompoundRow and op.kind == "or"
                           else op.format() for op in self.operands)

    def events(self) -> Iterator[EventRow]:
        for op in self.operands:
            yield from op.events()


TriggerRow = Union[EventRow, CompoundRow]  # noqa: UP007 - a forward reference in a NamedTuple


def event_model(row: EventRow) -> EventPattern:
    """The model of one event row."""
    return make_event("event", row[0], row[1], row[2], row[3])


def row_model(row: TriggerRow | TriggerModel) -> TriggerModel:
    """The model of a trigger row (a model is its own)."""
    if type(row) is EventRow:
        return event_model(row)
    if type(row) is CompoundRow:
        operands = tuple(map(row_model, row.operands))
        if row.kind == "and":
            return make_all_of(operands, "and")
        return make_any_of(operands, "or")
    return row  # type: ignore[return-value]

