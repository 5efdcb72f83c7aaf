"""Which runtime serves which script extension: ours in code, a site's through entry points.

The built-in runtimes are written here as `"module:Class"` references, so asking which
extensions exist (`extensions()`, what `check` and the config parser need) imports no runtime
module and works from a source tree without installed metadata. Entry points of the group
`qbcallbacks.runtimes` are added on top (a site's package may also override one of ours);
they are looked up once and cached, and `refresh()` drops the cache.

Asking `importlib.metadata` for a group parses the entry points of every installed
distribution, a cost every `check` would pay although almost no site adds a runtime. So the
installed `entry_points.txt` files are read first, and the real lookup runs only when one
declares in the group something other than our own built-ins (which our package declares
too), or when distributions may come from a place this search does not read (a zip on the
path, a finder of another kind).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import QbCallbacksError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

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


def entry_points(*, group: str) -> Iterable[EntryPoint]:
    """The installed entry points of `group`, as `importlib.metadata` finds them; nothing,
    without loading it, when no installed distribution adds to the built-ins."""
    if not _may_add_to_builtins(group):
        return ()
    from importlib.metadata import entry_points as lookup

    return lookup(group=group)


def _may_add_to_builtins(group: str) -> bool:
    """False only when no distribution `importlib.metadata` can find declares in `group`
    anything but the built-ins; every case this search does not cover answers True."""
    from importlib.machinery import PathFinder

    if any(hasattr(finder, "find_distributions") and finder is not PathFinder
           for finder in sys.meta_path):
        return True
    for entry in sys.path:
        if not isinstance(entry, str):
            return True
        root = entry or "."
        try:
            names = os.listdir(root)
        except OSError:
            if os.path.exists(root):  # a zip archive, or a directory we may not list
                return True
            continue
        egg = os.path.basename(root).lower().endswith(".egg")
        for name in names:
            low = name.lower()
            if not (low.endswith((".dist-info", ".egg-info")) or (egg and low == "egg-info")):
                continue
            try:
                with open(os.path.join(root, name, "entry_points.txt"), "rb") as file:
                    data = file.read()
            except OSError:  # no entry points, or metadata kept as a single file
                continue
            if group.encode() in data and _adds_to_builtins(data, group):
                return True
    return False


def _adds_to_builtins(data: bytes, group: str) -> bool:
    """Whether an `entry_points.txt` declares in `group` an entry that is not one of ours,
    read the way `importlib.metadata` reads it (stripped lines, `#` comments, `[section]`
    headers, `name = value` pairs)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    section = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section != group:
            continue
        name, equals, value = line.partition("=")
        ext = name.strip().lower().lstrip(".")
        if not equals or BUILTIN_RUNTIMES.get(ext) != value.strip():
            return True
    return False


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
