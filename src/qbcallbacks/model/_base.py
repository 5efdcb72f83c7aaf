"""The base of the pydantic data models: frozen, strict about unknown fields.

These are the data that cross the API and the wire (events, jobs, mail, settings), validated
where they come in. The data of the parsers and `check` are plain records instead
(`qbcallbacks._records`), which never load pydantic.
"""

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
# The slots every pydantic model has, set through their descriptors: a direct C call, where
# `object.__setattr__` would look each name up on the class first.
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_FIELD_SETS: dict[type[BaseModel], set[str]] = {}


def trusted(cls: type[_M], **values: Any) -> _M:
    """Build a model from values already known to be valid and complete, skipping validation.

    A stream of events builds a model per line from values it has just checked; pydantic's
    `model_construct` still costs microseconds per call in default handling. Every field must
    be given. A property test checks that the result equals a validated model.
    """
    return trusted_from(cls, values)


def trusted_from(cls: type[_M], values: dict[str, Any]) -> _M:
    """:func:`trusted` with the values as a dict the model takes over (a hot loop builds the
    dict literal itself rather than pay for keyword arguments)."""
    obj = _new(cls)  # pydantic models take object's own __new__
    _set(obj, "__dict__", values)
    # One set per model class is shared: frozen models never add to it, and pydantic copies
    # it before changing it (model_copy).
    fields = _FIELD_SETS.get(cls)
    if fields is None or len(fields) != len(values):
        fields = _FIELD_SETS[cls] = set(values)
    _set_fields(obj, fields)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj
