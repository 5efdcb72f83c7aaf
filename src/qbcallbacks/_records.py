"""Plain frozen records: the data that the parsers and `check` build, without pydantic.

A record is a stdlib dataclass with slots and keyword-only fields, immutable, so it compares,
hashes, pickles and prints like the frozen pydantic models elsewhere in the package, while
importing and defining one costs only the standard library: `qbcallbacks check` never loads
pydantic. :func:`record` makes one. It lets `dataclasses` register the fields and the slots
but gives the methods (`__init__`, `__eq__`, `__hash__`, `__repr__`, no assignment) from
shared functions: `dataclasses` compiles each method of each class from source, which for the
twenty records `check` defines costs a good part of its start-up.

A record's own `__post_init__` checks what a caller hands it (the public constructor); the
parsers, whose values the grammar has already checked, build records with :func:`maker` and
:func:`make_many`, which skip that check and the per-field `object.__setattr__` of a frozen
class. A pydantic model may still have a record field: pydantic treats stdlib dataclasses as
field types, and validates a dict into a record through its constructor.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform

R = TypeVar("R")
T = TypeVar("T", bound=type)

_consume: Callable[[Iterable[object]], None] = deque[object](maxlen=0).extend
_MISSING = dataclasses.MISSING


@dataclass_transform(kw_only_default=True, frozen_default=True)
def record(cls: T) -> T:
    """Make `cls` a frozen record: a dataclass with slots and keyword-only fields whose
    instances compare and hash by their fields (only with their own class) and refuse
    assignment; `__post_init__`, when defined, runs after the public constructor."""
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True,
                                      kw_only=True)(cls)
    fields = dataclasses.fields(made)
    names = tuple(f.name for f in fields)
    values = attrgetter(*names) if len(names) > 1 else _one_tuple(names[0])
    made.__record__ = _Spec(  # one class attribute, not a slot
        names, tuple(getattr(made, n).__set__ for n in names),
        tuple(f.default if f.default_factory is _MISSING else f.default_factory
              for f in fields),
        tuple(f.default_factory is not _MISSING for f in fields), values)
    for name, method in _METHODS.items():
        setattr(made, name, method)
    return made  # type: ignore[no-any-return] # `cls`, remade with slots by dataclasses


def _one_tuple(name: str) -> Callable[[object], tuple[object, ...]]:
    get = attrgetter(name)
    return lambda obj: (get(obj),)


class _Spec:
    """What the shared methods need of one record class, computed once."""

    __slots__ = ("defaults", "factories", "names", "setters", "values")

    def __init__(self, names: tuple[str, ...], setters: tuple[Callable[[object, object], None],
                 ...], defaults: tuple[object, ...], factories: tuple[bool, ...],
                 values: Callable[[object], Any]) -> None:
        self.names, self.setters, self.defaults = names, setters, defaults
        self.factories, self.values = factories, values


def _init(self: object, **given: object) -> None:
    spec: _Spec = type(self).__record__  # type: ignore[attr-defined]
    for name, setter, default, factory in zip(spec.names, spec.setters, spec.defaults,
                                              spec.factories, strict=True):
        if name in given:
            setter(self, given.pop(name))
        elif default is not _MISSING:
            setter(self, default() if factory else default)  # type: ignore[operator]
        else:
            raise TypeError(f"{type(self).__qualname__}() missing the keyword argument "
                            f"{name!r}")
    if given:
        raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument "
                        f"{next(iter(given))!r}")
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _eq(self: object, other: object) -> bool:
    if type(other) is not type(self):
        return NotImplemented  # type: ignore[no-any-return] # the protocol's answer
    values = type(self).__record__.values  # type: ignore[attr-defined]
    equal: bool = values(self) == values(other)
    return equal


def _hash(self: object) -> int:
    return hash(type(self).__record__.values(self))  # type: ignore[attr-defined]


def _repr(self: object) -> str:
    spec: _Spec = type(self).__record__  # type: ignore[attr-defined]
    parts = ", ".join(f"{n}={v!r}" for n, v in zip(spec.names, spec.values(self), strict=True))
    return f"{type(self).__qualname__}({parts})"


def _refuse(self: object, name: str, value: object = None) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _getstate(self: object) -> tuple[object, ...]:
    return tuple(type(self).__record__.values(self))  # type: ignore[attr-defined]


def _setstate(self: object, state: tuple[object, ...]) -> None:
    for setter, value in zip(type(self).__record__.setters, state, strict=True):  # type: ignore[attr-defined]
        setter(self, value)


_METHODS: dict[str, Callable[..., Any]] = {
    "__init__": _init, "__eq__": _eq, "__hash__": _hash, "__repr__": _repr,
    "__setattr__": _refuse, "__delattr__": _refuse, "__getstate__": _getstate,
    "__setstate__": _setstate,
}

def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The fields of a record class, in declaration order (inherited ones first)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def _setters(cls: type[Any]) -> list[Callable[[object, object], None]]:
    # Each slot's member descriptor sets the field directly: the class's frozen
    # `__setattr__` is not in the way, and there is no name lookup per call.
    return list(cls.__record__.setters)


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
