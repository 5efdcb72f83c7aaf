"""The bounds on hostile or accidental input, in one place.

Every reader and parser checks these before doing expensive work, so that no file, line or
`qb` call can make the supervisor slow or huge. The defaults are documented in spec/limits.md;
each can be changed with an environment variable `QBCALLBACKS_<FIELD NAME IN CAPITALS>` (read
by :func:`default_limits`) or by passing a :class:`Limits` to the function that reads input.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sized
from functools import cache

from pydantic import Field

from ._base import Frozen

#: Accepted trigger nesting never exceeds this, whatever the setting: the parsers build deeper
#: nesting with explicit stacks, but the models, their JSON and their `format` recurse.
HARD_MAX_TRIGGER_DEPTH = 64


class Limits(Frozen):
    """Bounds on input; every field is a count or a size in bytes / characters."""

    #: Parentheses open at once in one trigger (QCB005).
    max_trigger_depth: int = Field(32, ge=1, le=HARD_MAX_TRIGGER_DEPTH)
    #: Characters in one line of callbacks.conf or a `.qcb` file, or in one trigger (QCB006).
    max_line_length: int = Field(4096, ge=80)
    #: Bytes of one callbacks.conf (QCB007).
    max_config_bytes: int = Field(1 << 20, ge=1)
    #: Bytes of one `.qcb` program (QCB008).
    max_qcb_bytes: int = Field(256 << 10, ge=1)
    #: Bytes of one Python, Perl or site script (QCB009).
    max_script_bytes: int = Field(4 << 20, ge=1)
    #: Diagnostics reported for one file; the rest are counted in one summary (QCB010).
    max_diagnostics: int = Field(100, ge=1)
    #: Arguments of one `qb` call from a callback (QCB016).
    max_qb_args: int = Field(256, ge=1)
    #: Characters (for text) or items of one `qb` call argument (QCB017).
    max_qb_arg_size: int = Field(64 << 10, ge=1)
    #: Bytes of one qb.conf (QCB018).
    max_qbconf_bytes: int = Field(1 << 20, ge=1)


ENV_PREFIX = "QBCALLBACKS_"


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """Defaults overridden by `QBCALLBACKS_MAX_...` variables; a bad value is an error."""
    values: dict[str, int] = {}
    for name in Limits.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw.strip():
            values[name] = int(raw.strip())
    # The defaults need no checking: building pydantic's validator is most of what a clean
    # `check` would otherwise spend on validation.
    return Limits(**values) if values else Limits.model_construct()


@cache
def default_limits() -> Limits:
    """The limits of this process: the defaults with the environment's overrides, read once.

    A value that is not a whole number in range falls back to the defaults (the supervisor
    must start); `qbcallbacks check` reports the environment's problem separately.
    """
    try:
        return limits_from_env(os.environ)
    except ValueError:
        return Limits()


def qb_args_problem(call: str, args: tuple[object, ...] | list[object],
                    limits: Limits | None = None) -> str | None:
    """Why the arguments of one `qb` call are over the limits, or None; checked before they
    are parsed, so that a callback cannot make its host work on a huge argument list."""
    limits = default_limits() if limits is None else limits
    if len(args) > limits.max_qb_args:
        return (f"{call}: {len(args)} arguments, over the limit of {limits.max_qb_args} "
                "[QCB016]")
    for i, arg in enumerate(args, 1):
        if isinstance(arg, Sized) and len(arg) > limits.max_qb_arg_size:
            return (f"{call}: argument {i} has size {len(arg)}, over the limit of "
                    f"{limits.max_qb_arg_size} [QCB017]")
    return None
