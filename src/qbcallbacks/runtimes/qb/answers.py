"""The host side of `qb`: one function answers every call, from any runtime or worker.

Arguments arrive as plain data (possibly decoded from a worker's JSON, where Perl may send a
job id as a string), are checked here, and become `Supervisor` calls. Anything malformed is a
:class:`HostError`, which the runtime re-raises inside the script; it never reaches the host.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import ValidationError

from ...model.limits import qb_args_problem
from ...model.supervisor import (
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    Supervisor,
    WorkAction,
)
from .module import (
    HOST_CALLS,
    JOB_CALLS,
    SUBJOB_CALLS,
    WORK_CALLS,
)


def _job_id(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise HostError(f"{what}: expected a job id, got {value!r}")


def _job_target(fn: str, value: Any) -> tuple[int, int | None]:
    """`12`, `"12"` -> (12, None); `"12.3"` -> (12, 3), subjob 3 of job 12."""
    if isinstance(value, str) and "." in value:
        job, _, sub = value.strip().partition(".")
        return _acted_on(fn, _job_id(job, fn)), _job_id(sub, fn)
    return _acted_on(fn, _job_id(value, fn)), None


def _acted_on(fn: str, job: int) -> int:
    """An action's job; 0 is no job (what `jobid()` is in a global callback): refused."""
    if job == 0:
        raise HostError(f"{fn}: job 0 is no job (a global callback has none of its own); "
                        "name the job to act on")
    return job


def _work_target(fn: str, value: Any) -> tuple[int, str]:
    """`"12:5"` -> (12, "5"); the job id is digits, so the first colon splits."""
    if not isinstance(value, str) or ":" not in value:
        raise HostError(f"{fn}: expected 'jobid:workname', got {value!r}")
    job, _, work = value.partition(":")
    if not work:
        raise HostError(f"{fn}: empty work name in {value!r}")
    return _acted_on(fn, _job_id(job, fn)), work


def _mail(args: list[Any]) -> MailMessage:
    if len(args) != 3:
        raise HostError("mail takes (to, subject, body)")
    to, subject, body = args
    recipients = [to] if isinstance(to, str) else to
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise HostError("mail: 'to' must be an address or a list of addresses")
    if not isinstance(subject, str) or not isinstance(body, str):
        raise HostError("mail: subject and body must be text")
    try:
        return MailMessage(to=tuple(recipients), subject=subject, body=body)
    except ValidationError as exc:
        raise HostError(f"mail refused: {exc.errors()[0]['msg']}") from None


def answer(supervisor: Supervisor, fn: str, args: list[Any]) -> Any:
    """Answer the `qb` call `fn(*args)`; returns plain data, raises HostError."""
    if fn not in HOST_CALLS:
        raise HostError(f"qb has no function {fn!r}")
    if not isinstance(args, list):
        raise HostError(f"{fn}: malformed arguments")
    too_big = qb_args_problem(fn, args)
    if too_big is not None:
        raise HostError(too_big)
    if fn == "jobinfo":
        return list(supervisor.jobinfo(*args))
    if fn == "mail":
        supervisor.mail(_mail(args))
        return None
    if len(args) != 1:
        raise HostError(f"{fn} takes exactly one argument, got {len(args)}")
    if fn in WORK_CALLS:
        job, work = _work_target(fn, args[0])
        return supervisor.work_action(cast(WorkAction, WORK_CALLS[fn]), job, work)
    if fn in SUBJOB_CALLS:
        job, sub = _job_target(fn, args[0])
        if sub is None:
            raise HostError(f"{fn}: expected 'jobid.subjobid', got {args[0]!r}")
        return supervisor.subjob_action(cast(SubjobAction, SUBJOB_CALLS[fn]), job, sub)
    assert fn in JOB_CALLS
    job, sub = _job_target(fn, args[0])
    if sub is not None:
        if fn == "remove":
            raise HostError("remove acts on whole jobs, not subjobs")
        return supervisor.subjob_action(cast(SubjobAction, fn), job, sub)
    return supervisor.job_action(cast(JobAction, fn), job)
