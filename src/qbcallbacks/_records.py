"""Plain frozen records: the data that the parsers and `check` build, without pydantic.

A record is a stdlib dataclass, frozen, with slots and keyword-only fields
(`@dataclass(frozen=True, slots=True, kw_only=True)`), so it compares,
hashes, pickles and prints like the frozen pydantic models elsewhere in the package, but
importing and defining one costs nothing beyond the standard library: `qbcallbacks check`
never loads pydantic. A record's own `__post_init__` checks what a caller hands it (the
public constructor); the parsers, whose values the grammar has already checked, build
records with :func:`maker` and :func:`make_many`, which skip that check and the frozen
class's `object.__setattr__` per field. A pydantic model may still have a record field:
pydantic treats stdlib dataclasses as field types.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, TypeVar

R = TypeVar("R")

_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The fields of a record class, in declaration order (inherited ones first)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _setters(cls: type[Any]) -> list[Callable[[object, object], None]]:
    # Each slot's member descriptor sets the field directly: the class's frozen
    # `__setattr__` is not in the way, and there is no name lookup per call.
    return [getattr(cls, name).__set__ for name in field_names(cls)]


def maker(cls: type[R]) -> Callable[..., R]:
    """A constructor taking every field positionally, in declaration order, that trusts its
    values: no `__post_init__` check, no defaults. For values a parser has just accepted."""
    names = field_names(cls)
    params = ", ".join(f"_{i}" for i in range(len(names)))
    body = "".join(f"    _s{i}(o, _{i})\n" for i in range(len(names)))
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_s{i}": s for i, s in enumerate(_setters(cls))})
    # A generated function, as dataclasses makes `__init__`: one direct call per field.
    exec(f"def make({params}):\n    o = _new(_cls)\n{body}    return o\n", namespace)
    make: Callable[..., R] = namespace["make"]
    make.__qualname__ = f"{cls.__qualname__}.trusted"
    return make


def make_many(cls: type[R], n: int, columns: Iterable[Iterable[object]]) -> list[R]:
    """`n` records of `cls` from one iterable per field (declaration order), trusted as
    :func:`maker`'s values are: one C-level pass per field, not a Python call per record."""
    objs = list(map(object.__new__, repeat(cls, n)))
    for setter, column in zip(_setters(cls), columns, strict=True):
        _consume(map(setter, objs, column))
    return objs


def replace(obj: R, **changes: Any) -> R:
    """`obj` with some fields changed, checked as the public constructor checks them."""
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var] # a record is a dataclass


def to_dict(obj: object) -> dict[str, Any]:
    """The fields of a record as a dict, nested records and tuples copied as `asdict` does."""
    fields: dict[str, Any] = dataclasses.asdict(obj)  # type: ignore[call-overload] # a record is a dataclass
    return fields


def to_json(obj: object) -> Any:
    """A record (or a tuple, list or dict of them) as JSON-ready data: tuples become lists.

    Iterative, not recursive: a trigger nested as deeply as the limits allow must not need a
    deep Python stack to be written out."""
    root: list[Any] = [None]
    stack: list[tuple[object, Any, Any]] = [(obj, root, 0)]
    while stack:
        value, parent, key = stack.pop()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out: Any = {}
            for name in field_names(type(value)):
                out[name] = None
                stack.append((getattr(value, name), out, name))
        elif isinstance(value, (tuple, list)):
            out = [None] * len(value)
            stack.extend((item, out, i) for i, item in enumerate(value))
        elif isinstance(value, dict):
            out = {}
            for k, item in value.items():
                out[k] = None
                stack.append((item, out, k))
        else:
            out = value
        parent[key] = out
    return root[0]


def check_type(owner: str, name: str, value: object, *types: type) -> None:
    """Raise :class:`RecordError` unless `value` is of one of `types` (bools are not ints)."""
    if not isinstance(value, types) or (type(value) is bool and bool not in types):
        from .errors import RecordError  # errors builds its records with this module

        wanted = " or ".join("None" if t is type(None) else t.__name__ for t in types)
        raise RecordError(f"{owner}.{name} must be {wanted}, not {type(value).__name__}")
