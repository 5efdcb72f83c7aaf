"""Which runtime serves which script extension: ours, and a site's through entry points.

The built-in runtimes (`.py`, `.pl`, `.qcb`) are registered here in code as "module:Class"
references; our package also declares them as entry points of the group
`qbcallbacks.runtimes` (pyproject.toml; a test ties the two). A site's package adds an
extension through that group, found with the standard
`importlib.metadata.entry_points(group=...)`. A built-in extension is always served by ours,
so asking about one needs neither the lookup nor `importlib.metadata` (importing it and reading
every installed distribution's entry points is a large part of a `check` run's start-up); the
lookup runs only when an extension that is not built in is asked about, or the full list is.
It runs once and is cached; `refresh()` drops the cache.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from ..errors import QbCallbacksError

if TYPE_CHECKING:
    from .api import Runtime

ENTRY_POINT_GROUP = "qbcallbacks.runtimes"

#: Extension (without the dot) -> the built-in runtime class, as "module:Class".
BUILTIN_RUNTIMES: dict[str, str] = {
    "py": "qbcallbacks.runtimes.python:PythonRuntime",
    "pl": "qbcallbacks.runtimes.perl:PerlRuntime",
    "qcb": "qbcallbacks.runtimes.qcb:QcbRuntime",
}


class RuntimeNotFound(QbCallbacksError):
    """No runtime is registered for an extension."""


@functools.cache
def references() -> dict[str, str]:
    """Every registered runtime by extension, as "module:Class" (nothing imported). A site's
    entry point naming a built-in extension is ignored: ours serves it."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN_RUNTIMES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ext = ep.name.lower().lstrip(".")
        if ext not in BUILTIN_RUNTIMES:
            found[ext] = ep.value
    return found


def reference(extension: str) -> str | None:
    """The runtime registered for `extension` (with or without the dot), as "module:Class";
    entry points are read only for an extension that is not built in."""
    ext = extension.lower().lstrip(".")
    builtin = BUILTIN_RUNTIMES.get(ext)
    return builtin if builtin is not None else references().get(ext)


def extensions() -> tuple[str, ...]:
    """The registered extensions, without the dot, sorted."""
    return tuple(sorted(references()))


def refresh() -> None:
    """Forget the cached lookup (after a site package was installed at run time, in tests)."""
    references.cache_clear()
    _load.cache_clear()


@functools.cache
def _load(ref: str) -> type[Runtime] | None:
    from .api import Runtime

    module_name, _, attr = ref.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj if isinstance(obj, type) and issubclass(obj, Runtime) else None


def runtime_classes() -> dict[str, type[Runtime]]:
    """Every registered runtime class by extension (imports each runtime module)."""
    found: dict[str, type[Runtime]] = {}
    for ext, ref in references().items():
        cls = _load(ref)
        if cls is not None:
            found[ext] = cls
    return found


def runtime_for(extension: str) -> type[Runtime]:
    """The runtime class registered for `extension` (with or without the dot)."""
    ext = extension.lower().lstrip(".")
    found = reference(ext)
    cls = _load(found) if found is not None else None
    if cls is None:
        raise RuntimeNotFound(f"no runtime is registered for '.{ext}' files; known: "
                              + ", ".join(f".{e}" for e in extensions()))
    return cls
