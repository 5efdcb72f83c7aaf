"""Loading the grammars, once per process, from the installed package."""

from __future__ import annotations

from functools import cache
from importlib import resources

from lark import Lark

GRAMMAR_FILES: tuple[str, ...] = ("common.lark", "trigger.lark", "callbacks.lark", "qcb.lark")


def _open(name: str, start: list[str]) -> Lark:
    return Lark.open_from_package(
        "qbcallbacks.lang", name, parser="lalr", start=start, propagate_positions=True,
        maybe_placeholders=False,
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
    return resources.files("qbcallbacks.lang").joinpath(name).read_text(encoding="utf-8")
