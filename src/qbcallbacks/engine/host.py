"""The `Supervisor` protocol: what an embedding supervisor offers to callbacks.

Callbacks reach it through `qb` (Python and Perl) or through qcb commands. Every method takes
plain data, so the same calls can be answered in-process or over a pipe from a worker.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from ._base import Frozen

JobAction = Literal[
    "unblock", "block", "fail", "kill", "remove", "migrate", "preempt", "interrupt", "suspend",
    "resume",
]
WorkAction = Literal["unblock", "block", "kill", "retry", "requeue", "complete", "fail"]
SubjobAction = Literal[
    "unblock", "unblock-single", "block", "fail", "kill", "migrate", "preempt", "interrupt",
    "suspend", "resume",
]


class MailMessage(Frozen):
    """A mail a callback asks the supervisor to send; headers are single-line by construction."""

    to: tuple[str, ...]
    subject: str
    body: str
    sender: str = "qbcallbacks"


@runtime_checkable
class Supervisor(Protocol):
    """The host side of every callback: job lookup and actions on jobs, work and subjobs."""

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        """Look jobs up with the original's arguments: `"-id", N` or `"-pgrp", N`."""
        ...

    def job_action(self, action: JobAction, job_id: int) -> bool:
        """Apply `action` to a job; False if the job does not exist or cannot take it."""
        ...

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        """Apply `action` to the work item named `work` of a job."""
        ...

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        """Apply `action` to a subjob (instance) of a job."""
        ...

    def mail(self, message: MailMessage) -> None:
        """Send (or queue) a mail."""
        ...
