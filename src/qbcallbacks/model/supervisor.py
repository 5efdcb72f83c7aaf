"""The `Supervisor` protocol: what an embedding supervisor offers to callbacks.

Callbacks reach it through `qb` (Python and Perl) or through qcb commands. Every method takes
and returns plain data (ints, strings, lists and dicts of them), so the same calls can be
answered in-process or over a pipe from a worker process.

`jobinfo` keeps the original's command-line style (`"-id", N` or `"-pgrp", N`); an
implementation parses the arguments with :func:`parse_jobinfo_args` so that every supervisor
accepts and rejects the same spellings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import field_validator

from ..errors import QbCallbacksError
from ._base import Frozen
from .limits import qb_args_problem

JobAction = Literal[
    "unblock", "block", "fail", "kill", "remove", "migrate", "preempt", "interrupt", "suspend",
    "resume",
]
WorkAction = Literal["unblock", "block", "kill", "retry", "requeue", "complete", "fail"]
SubjobAction = Literal[
    "unblock", "unblock-single", "block", "fail", "kill", "migrate", "preempt", "interrupt",
    "suspend", "resume",
]


T = TypeVar("T")

#: When the run asking the supervisor something must end (`time.monotonic()`), set by the
#: runtime while it answers the run's calls: a supervisor over a wire waits no longer.
RUN_DEADLINE: ContextVar[float | None] = ContextVar("qbcallbacks_run_deadline", default=None)


def asking_until(deadline: float, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` with `RUN_DEADLINE` set to `deadline`, as a runtime answers a run's call."""
    token = RUN_DEADLINE.set(deadline)
    try:
        return call(*args)
    finally:
        RUN_DEADLINE.reset(token)


class HostError(QbCallbacksError):
    """A callback asked the supervisor something malformed (bad `jobinfo` arguments, ...).

    Runtimes turn it into an exception inside the script (`qb.QbError` in Python, `die` in
    Perl) or an error line of a qcb run; it never reaches the embedding supervisor.
    """


# Control characters (CR and LF among them) and Unicode line separators (U+0085, U+2028,
# U+2029) would let a value end a mail header early, or break its encoding.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A deliberately plain address: no blanks, commas, angle brackets or leading dash, so that it
# can go to an SMTP envelope or a sendmail argument list without quoting.
_ADDRESS = re.compile(r"[^\s,;<>()\"'\\-][^\s,;<>()\"'\\]*\Z")


def single_line(text: str) -> str:
    """`text` with every control character (CR and LF included) replaced by a blank."""
    return _CONTROL.sub(" ", text)


class MailMessage(Frozen):
    """A mail a callback asks the supervisor to send.

    Header fields are validated to be single-line and addresses plain, so a job name or a
    script can never add a header; builders that start from untrusted text use
    :func:`single_line` first. The body is free text.
    """

    to: tuple[str, ...]
    subject: str
    body: str
    sender: str = "qbcallbacks"

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("a mail needs at least one recipient")
        for address in value:
            if not _ADDRESS.match(address):
                raise ValueError(f"{address!r} is not a plain mail address")
        return value

    @field_validator("subject")
    @classmethod
    def _check_subject(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("a mail subject must be one line without control characters")
        return value

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError(f"{value!r} is not a plain mail address")
        return value


class JobQuery(Frozen):
    """`jobinfo` arguments, parsed: jobs by id and by process group, and what to include."""

    ids: tuple[int, ...] = ()
    pgrps: tuple[int, ...] = ()
    #: `-agenda`: add each job's work items as `agenda` (a list of `{name, status}`).
    agenda: bool = False
    #: `-subjobs`: add each job's subjobs as `subjobs` (a list of `{id, status, host}`).
    subjobs: bool = False


def _as_id(value: Any, flag: str) -> int:
    if isinstance(value, bool):
        raise HostError(f"jobinfo: {flag} needs a job id, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise HostError(f"jobinfo: {flag} needs a job id, not {value!r}")


def parse_jobinfo_args(args: tuple[Any, ...] | list[Any]) -> JobQuery:
    """Parse `("-id", N, "-pgrp", M, "-agenda", "-subjobs")` in any order, flags repeatable.

    A job id may be an int or a string of digits (Perl sends either).
    """
    ids: list[int] = []
    pgrps: list[int] = []
    flags = {"agenda": False, "subjobs": False}
    too_big = qb_args_problem("jobinfo", args)
    if too_big is not None:
        raise HostError(too_big)
    items = list(args)
    if not items:
        raise HostError('jobinfo needs arguments, such as "-id", <job id>')
    i = 0
    while i < len(items):
        flag = items[i]
        if not isinstance(flag, str) or not flag.startswith("-"):
            raise HostError(f"jobinfo: expected an option such as '-id', got {flag!r}")
        name = flag.lower()
        if name in ("-id", "-pgrp"):
            if i + 1 >= len(items):
                raise HostError(f"jobinfo: {flag} needs a job id")
            (ids if name == "-id" else pgrps).append(_as_id(items[i + 1], flag))
            i += 2
            continue
        if name in ("-agenda", "-subjobs"):
            flags[name[1:]] = True
            i += 1
            continue
        raise HostError(f"jobinfo: unknown option {flag!r}; known: -id, -pgrp, -agenda, -subjobs")
    if not ids and not pgrps:
        raise HostError('jobinfo needs "-id" or "-pgrp"')
    return JobQuery(ids=tuple(ids), pgrps=tuple(pgrps), **flags)


def jobinfo_record(*, id: int, name: str, label: str, status: str, pgrp: int, pid: int,
                   user: str, email: str = "", priority: int = 0, todo: int = 0,
                   agenda: list[tuple[str, str]] | None = None,
                   subjobs: list[tuple[int, str, str]] | None = None) -> dict[str, Any]:
    """The one shape of a job in a `jobinfo` answer, as the original's scripts read it:
    `agenda` (work name, status) and `subjobs` (id, status, host) only when asked for."""
    info: dict[str, Any] = {
        "id": id, "name": name, "label": label, "status": status, "pgrp": pgrp, "pid": pid,
        "user": user, "email": email, "priority": priority, "todo": todo}
    if agenda is not None:
        info["agenda"] = [{"name": n, "status": st} for n, st in agenda]
    if subjobs is not None:
        info["subjobs"] = [{"id": i, "status": st, "host": h} for i, st, h in subjobs]
    return info


@runtime_checkable
class Supervisor(Protocol):
    """The host side of every callback: job lookup and actions on jobs, work and subjobs.

    Methods may be called from several threads at once (one per running callback) and must
    not block for long: they run while a callback waits. Actions return False, rather than
    raising, when the target does not exist or cannot take the action in its state.
    """

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        """Look jobs up with the original's arguments: `"-id", N` or `"-pgrp", N`.

        Each job is a dict with at least `id`, `name`, `label`, `status`, `pgrp`, `pid`;
        raise :class:`HostError` for malformed arguments (see :func:`parse_jobinfo_args`).
        """
        ...

    def job_action(self, action: JobAction, job_id: int) -> bool:
        """Apply `action` to a job; False if the job does not exist or cannot take it.

        Three actions take a running job off its hosts and differ in what happens to its
        running instances: `preempt` lets them finish their current work (passive),
        `interrupt` stops them and requeues their work (aggressive), `migrate` does what
        `interrupt` does and asks for other hosts.
        """
        ...

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        """Apply `action` to the work item named `work` of a job."""
        ...

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        """Apply `action` to a subjob (instance) of a job; `unblock` unblocks every blocked
        subjob of the job, `unblock-single` only this one."""
        ...

    def mail(self, message: MailMessage) -> None:
        """Send (or queue) a mail."""
        ...
