"""How a Python callback's end is described, shared by the in-process runner.

The isolated worker (`workers/python_worker.py`) loads this file by path, as it loads the
`qb` module, so both modes word exits and tracebacks the same way; it therefore imports
nothing but the standard library.
"""

from __future__ import annotations

import traceback
from typing import Any


class Unreadable(Exception):
    """The script file could not be read (the message says why; no traceback is useful)."""


def exit_outcome(code: object) -> dict[str, Any]:
    """The status, exit code and error of a callback that raised `SystemExit(code)`."""
    if code is None or code == 0:
        return {"status": "ok", "exit_code": 0}
    if isinstance(code, int):
        return {"status": "error", "exit_code": code,
                "error": f"the callback called sys.exit({code})"}
    return {"status": "error", "exit_code": 1, "error": f"the callback exited: {code}"}


def describe_exception(exc: BaseException) -> str:
    """A traceback without our own frame (the one that called `exec`)."""
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
