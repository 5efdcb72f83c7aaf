"""Which runtime serves which script extension: ours in code, a site's through entry points.

The built-in runtimes are written here as `"module:Class"` references, so asking which
extensions exist (`extensions()`, what `check` and the config parser need) imports no runtime
module and works from a source tree without installed metadata. Entry points of the group
`qbcallbacks.runtimes` are added on top (a site's package may also override one of ours);
they are looked up once and cached, and `refresh()` drops the cache.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
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
    """Every registered runtime by extension, as "module:Class" (nothing imported)."""
    found = dict(BUILTIN_RUNTIMES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name.lower().lstrip(".")] = ep.value
    return found


def extensions() -> tuple[str, ...]:
    """The registered extensions, without the dot, sorted."""
    return tuple(sorted(references()))


def refresh() -> None:
    """Forget the cached lookup (after a site package was installed at run time, in tests)."""
    references.cache_clear()
    _load.cache_clear()


@functools.cache
def _load(reference: str) -> type[Runtime] | None:
    from .api import Runtime

    module_name, _, attr = reference.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj if isinstance(obj, type) and issubclass(obj, Runtime) else None


def runtime_classes() -> dict[str, type[Runtime]]:
    """Every registered runtime class by extension (imports each runtime module)."""
    found: dict[str, type[Runtime]] = {}
    for ext, reference in references().items():
        cls = _load(reference)
        if cls is not None:
            found[ext] = cls
    return found


def runtime_for(extension: str) -> type[Runtime]:
    """The runtime class registered for `extension` (with or without the dot)."""
    ext = extension.lower().lstrip(".")
    reference = references().get(ext)
    cls = _load(reference) if reference is not None else None
    if cls is None:
        raise RuntimeNotFound(f"no runtime is registered for '.{ext}' files; known: "
                              + ", ".join(f".{e}" for e in extensions()))
    return cls
