"""Which runtime serves which script extension: ours, and a site's through entry points.

Runtimes are entry points of the group `qbcallbacks.runtimes`, found with
`importlib.metadata.entry_points(group=...)`; our own package declares the built-ins there too
(pyproject.toml). `BUILTIN_RUNTIMES` holds the same references (a test ties the two) so that a
source tree without installed metadata still has them, and so that asking which extensions
exist imports no runtime module. A site's package may add an extension or override one of
ours. The lookup runs once and is cached; `refresh()` drops the cache.
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
    """Every registered runtime by extension, as "module:Class" (nothing imported)."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN_RUNTIMES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ext = ep.name.lower().lstrip(".")
        if ep.value != BUILTIN_RUNTIMES.get(ext):  # our own declaration never undoes a site's
            found[ext] = ep.value
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
