"""The `qb` module a Python callback sees, pre-injected and through `import qb`.

This file is also loaded by path inside isolated worker processes, so it imports nothing but
the standard library. Every function reads the current invocation from a context variable:
two callbacks running at once (threads in-process, or separate workers) never see each
other's job. Calls that need the supervisor go through the scope's `call` function, which is
a direct call in-process and a request over the worker's pipe in isolated mode; the host
answers both with the same code (`qbcallbacks.runtimes.qb.answers`).

The names here are the original's: `jobid()`, `workid()`, `subid()`, `jobinfo("-id", N)`,
`unblock(id)`, `workunblock("job:work")`, ... A job action given `"job.subjob"` acts on that
subjob. The Perl `qb` module is generated from the same tables, so the two stay in step.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sized
from typing import Any

#: Job calls; the name is the action. Given "job.subjob" they act on that subjob. The
#: actions are `model.supervisor`'s (a test ties these copies to them).
JOB_CALLS: tuple[str, ...] = (
    "unblock", "block", "fail", "kill", "remove", "migrate", "preempt", "interrupt", "suspend",
    "resume",
)
#: Python/Perl name -> work action.
WORK_CALLS: dict[str, str] = {
    "workunblock": "unblock", "workblock": "block", "workkill": "kill", "workretry": "retry",
    "workrequeue": "requeue", "workcomplete": "complete", "workfail": "fail",
}
#: Subjob-only calls (a job call given "job.subjob" covers the rest).
SUBJOB_CALLS: dict[str, str] = {"subunblocksingle": "unblock-single"}
#: Every name answered by the host, with `jobinfo` and `mail`.
HOST_CALLS: tuple[str, ...] = ("jobinfo", "mail", *JOB_CALLS, *WORK_CALLS, *SUBJOB_CALLS)

#: Default bounds of one `qb` call: the defaults of `Limits.max_qb_args` and
#: `max_qb_arg_size` (a test ties them). The host gives each run its process's limits (the
#: scope's), checks them in the script's process before a call leaves it, and again when it
#: answers, so that a call cannot keep the host busy past the run's deadline.
MAX_CALL_ARGS = 256
MAX_ARG_SIZE = 64 * 1024
#: Largest line a worker may send the host (the pool reads no further); a call within the
#: bounds above whose JSON is longer still is refused in the script.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class QbError(Exception):
    """A `qb` call failed: bad arguments, or no callback is running in this context."""


def check_arguments(fn: str, args: list[Any], max_args: int = MAX_CALL_ARGS,
                    max_arg_size: int = MAX_ARG_SIZE) -> None:
    """Refuse a call over the bounds (a `QbError` in the script), in the words the host's
    check (`model.limits.qb_args_problem`) uses."""
    if len(args) > max_args:
        raise QbError(f"{fn}: {len(args)} arguments, over the limit of {max_args} [QCB016]")
    for i, arg in enumerate(args, 1):
        if isinstance(arg, Sized) and len(arg) > max_arg_size:
            raise QbError(f"{fn}: argument {i} has size {len(arg)}, over the limit of "
                          f"{max_arg_size} [QCB017]")


class Scope:
    """What `qb` knows about the running invocation, and the bounds of its calls."""

    __slots__ = ("call", "event", "jobid", "max_arg_size", "max_args", "subid", "workid")

    def __init__(self, jobid: int, workid: str | None, subid: int, event: str,
                 call: Callable[[str, list[Any]], Any], max_args: int = MAX_CALL_ARGS,
                 max_arg_size: int = MAX_ARG_SIZE) -> None:
        self.jobid = jobid
        self.workid = workid
        self.subid = subid
        self.event = event
        self.call = call
        self.max_args = max_args
        self.max_arg_size = max_arg_size


current: contextvars.ContextVar[Scope] = contextvars.ContextVar("qb_scope")


def _call(name: str, args: list[Any]) -> Any:
    scope = _scope()
    check_arguments(name, args, scope.max_args, scope.max_arg_size)
    return scope.call(name, args)


def _scope() -> Scope:
    try:
        return current.get()
    except LookupError:
        raise QbError("qb is only usable while a callback runs (not from threads it "
                      "started)") from None


def jobid() -> int:
    """The id of the job the callback fired for."""
    return _scope().jobid


def workid() -> str | None:
    """The name of the work item whose event fired the callback, or None."""
    return _scope().workid


def subid() -> int:
    """The subjob id whose event fired the callback, or -1."""
    return _scope().subid


def event() -> str:
    """The event that fired the callback, as text (`complete-work-12-5`)."""
    return _scope().event


def jobinfo(*args: Any) -> list[dict[str, Any]]:
    """Jobs matching `"-id", N` and/or `"-pgrp", N`, as dicts (`id`, `name`, `status`, ...)."""
    result = _call("jobinfo", list(args))
    if not isinstance(result, list):
        raise QbError("jobinfo: malformed answer from the supervisor")
    return result


def mail(to: str | list[str] | tuple[str, ...], subject: str, body: str = "") -> None:
    """Ask the supervisor to send a mail; header fields must be single-line."""
    _call("mail", [to if isinstance(to, str) else list(to), subject, body])


def _action(name: str) -> Callable[[Any], bool]:
    def action(target: Any) -> bool:
        return bool(_call(name, [target]))

    action.__name__ = action.__qualname__ = name
    action.__doc__ = f"Ask the supervisor to {name} a job, work item or subjob."
    return action


for _name in JOB_CALLS + tuple(WORK_CALLS) + tuple(SUBJOB_CALLS):
    globals()[_name] = _action(_name)
del _name
