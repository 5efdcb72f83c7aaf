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

from .._records import check_type, field_names, record
from ..errors import RecordError

#: Accepted trigger nesting never exceeds this, whatever the setting: the parsers build deeper
#: nesting with explicit stacks, but the models, their JSON and their `format` recurse.
HARD_MAX_TRIGGER_DEPTH = 64


@record
class Limits:
    """Bounds on input; every field is a count or a size in bytes / characters.

    The constructor checks each value against its range (:data:`RANGES`) and raises a
    :class:`RecordError` that names the field."""

    #: Parentheses open at once in one trigger (QCB005).
    max_trigger_depth: int = 32
    #: Characters in one line of callbacks.conf or a `.qcb` file, or in one trigger (QCB006).
    max_line_length: int = 4096
    #: Bytes of one callbacks.conf (QCB007).
    max_config_bytes: int = 1 << 20
    #: Bytes of one `.qcb` program (QCB008).
    max_qcb_bytes: int = 256 << 10
    #: Bytes of one Python, Perl or site script (QCB009).
    max_script_bytes: int = 4 << 20
    #: Diagnostics reported for one file; the rest are counted in one summary (QCB010).
    max_diagnostics: int = 100
    #: Arguments of one `qb` call from a callback (QCB016).
    max_qb_args: int = 256
    #: Characters (for text) or items of one `qb` call argument (QCB017).
    max_qb_arg_size: int = 64 << 10
    #: Bytes of one qb.conf (QCB018).
    max_qbconf_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in FIELDS:
            value = getattr(self, name)
            check_type("Limits", name, value, int)
            low, high = RANGES.get(name, (1, None))
            if value < low or (high is not None and value > high):
                within = f"at least {low}" if high is None else f"from {low} to {high}"
                raise RecordError(f"Limits.{name} must be {within}, not {value}")


#: The fields of :class:`Limits`, in order.
FIELDS = field_names(Limits)
#: Each field's (lowest, highest or None) allowed value; a field not listed is at least 1.
RANGES: dict[str, tuple[int, int | None]] = {
    "max_trigger_depth": (1, HARD_MAX_TRIGGER_DEPTH),
    "max_line_length": (80, None),
}
#: The defaults, built once (they pass the check by construction).
_DEFAULTS = Limits()


ENV_PREFIX = "QBCALLBACKS_"


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """Defaults overridden by `QBCALLBACKS_MAX_...` variables; a bad value is an error."""
    values: dict[str, int] = {}
    for name in FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw.strip():
            try:
                values[name] = int(raw.strip())
            except ValueError:
                raise RecordError(f"{ENV_PREFIX}{name.upper()} is {raw.strip()!r}, "
                                  "not a whole number") from None
    return Limits(**values) if values else _DEFAULTS


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
