"""The base of every data model: frozen, strict about unknown fields."""

from __future__ import annotations

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
_FIELD_SETS: dict[type[BaseModel], set[str]] = {}


def trusted(cls: type[_M], **values: Any) -> _M:
    """Build a model from values already known to be valid and complete, skipping validation.

    The parsers build hundreds of thousands of models from text the grammar has just accepted;
    pydantic's `model_construct` still costs microseconds per call in default handling. Every
    field must be given. A property test checks that the result equals a validated model.
    """
    obj = _new(cls)  # pydantic models take object's own __new__
    _set(obj, "__dict__", values)
    # One set per model class is shared: frozen models never add to it, and pydantic copies
    # it before changing it (model_copy). This halves the objects a big parse allocates.
    fields = _FIELD_SETS.get(cls)
    if fields is None or len(fields) != len(values):
        fields = _FIELD_SETS[cls] = set(values)
    _set(obj, "__pydantic_fields_set__", fields)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj
