"""Loading the grammars, once per process, from the installed package.

Building the LALR tables costs tens of milliseconds per grammar, which every `check` run
(a pre-commit hook, an editor save) would pay. Lark can keep the built parser in a cache
file; it is a pickle, so it is only ever kept in a directory that belongs to the current user
and that no one else can write (`$XDG_CACHE_HOME/qbcallbacks`, else `~/.cache/qbcallbacks`),
never in a shared temporary directory. Without such a directory the grammar is built each
time.
"""

from __future__ import annotations

import os
import stat
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lark itself is imported with the first parser: a clean check needs none
    from lark import Lark

GRAMMAR_FILES: tuple[str, ...] = ("common.lark", "trigger.lark", "callbacks.lark", "qcb.lark")


@cache
def private_cache_dir() -> Path | None:
    """A cache directory only the current user can write, created if needed, or None."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    directory = Path(base) / "qbcallbacks"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(directory)
    except OSError:
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        return None
    return directory


def _cache_file(name: str) -> str | bool:
    directory = private_cache_dir()
    if directory is None:
        return False
    # Lark adds nothing to a given file name, so the key must change with what is cached.
    from lark import __version__ as lark_version

    text = grammar_text(name) + "".join(grammar_text(g) for g in GRAMMAR_FILES if g != name)
    key = f"{hash_text(text)}-{lark_version}"
    return str(directory / f"{name}-{key}.lalr")


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _open(name: str, start: list[str]) -> Lark:
    from lark import Lark

    return Lark.open_from_package(
        "qbcallbacks.lang", name, parser="lalr", start=start, propagate_positions=True,
        maybe_placeholders=False, cache=_cache_file(name),
    )


@cache
def trigger_lark() -> Lark:
    """Parser for a trigger expression on its own (start symbol `trigger`)."""
    return _open("trigger.lark", ["trigger"])


@cache
def config_lark() -> Lark:
    """Parser for callbacks.conf: `start` for a whole file, `line` for one line."""
    return _open("callbacks.lark", ["start", "line"])


@cache
def qcb_lark() -> Lark:
    """Parser for `.qcb` files: `start` for a whole file, `line` for one line."""
    return _open("qcb.lark", ["start", "line"])


def grammar_text(name: str) -> str:
    """The text of a shipped grammar file, for tools that embed it (a language server)."""
    # pkgutil, as Lark itself uses, rather than importlib.resources: the same files (from a
    # directory or a zip) without loading importlib.resources and zipfile; imported here, since
    # a `check` that the hand readers serve never reads a grammar.
    import pkgutil

    data = pkgutil.get_data("qbcallbacks.lang", name)
    if data is None:  # pragma: no cover - a loader that cannot read package data
        raise FileNotFoundError(name)
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


_STARTS: dict[str, list[str]] = {
    "trigger.lark": ["trigger"], "callbacks.lark": ["start", "line"], "qcb.lark": ["start", "line"],
}


@cache
def lark_with_grammar(name: str) -> Lark:
    """A parser built from the grammar text, never from the cache, so that it keeps the
    grammar object itself: for tools that read it, such as hypothesis's `from_lark`."""
    from lark import Lark

    return Lark.open_from_package(
        "qbcallbacks.lang", name, parser="lalr", start=_STARTS[name], propagate_positions=True,
        maybe_placeholders=False,
    )
