"""The base of every data model: frozen, strict about unknown fields."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable data; instances are hashable and safe to share between threads."""

    # Schemas are built on first validation, not at import: a command that never builds a
    # model of some class never pays for it.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


_M = TypeVar("_M", bound=BaseModel)
_set = object.__setattr__
_new = object.__new__
# The slots every pydantic model has, set through their descriptors: a direct C call, where
# `object.__setattr__` would look each name up on the class first.
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend
_FIELD_SETS: dict[type[BaseModel], set[str]] = {}


def trusted(cls: type[_M], **values: Any) -> _M:
    """Build a model from values already known to be valid and complete, skipping validation.

    The parsers build hundreds of thousands of models from text the grammar has just accepted;
    pydantic's `model_construct` still costs microseconds per call in default handling. Every
    field must be given. A property test checks that the result equals a validated model.
    """
    return trusted_from(cls, values)


def trusted_from(cls: type[_M], values: dict[str, Any]) -> _M:
    """:func:`trusted` with the values as a dict the model takes over (a hot loop builds the
    dict literal itself rather than pay for keyword arguments)."""
    obj = _new(cls)  # pydantic models take object's own __new__
    _set(obj, "__dict__", values)
    # One set per model class is shared: frozen models never add to it, and pydantic copies
    # it before changing it (model_copy). This halves the objects a big parse allocates.
    fields = _FIELD_SETS.get(cls)
    if fields is None or len(fields) != len(values):
        fields = _FIELD_SETS[cls] = set(values)
    _set_fields(obj, fields)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def trusted_many(cls: type[_M], values: Sequence[dict[str, Any]]) -> list[_M]:
    """:func:`trusted_from` for many dicts at once, each with every field of `cls` in the same
    order: one C-level pass per slot rather than a Python call per model, about half the cost
    of a model each (a parse builds two per rule line)."""
    n = len(values)
    if not n:
        return []
    objs = list(map(_new, repeat(cls, n)))
    fields = _FIELD_SETS.get(cls)
    if fields is None or len(fields) != len(values[0]):
        fields = _FIELD_SETS[cls] = set(values[0])
    _consume(map(_set_dict, objs, values))
    _consume(map(_set_fields, objs, repeat(fields, n)))
    _consume(map(_set_extra, objs, repeat(None, n)))
    _consume(map(_set_private, objs, repeat(None, n)))
    return objs
