"""What travels between the dispatcher and its Celery workers, and the names it travels under.

A run goes out as one Celery task (`RUN_TASK`) whose only argument is a `RemoteRun`. Every
message back is JSON on the dispatcher's own queue (`RemoteRun.calls`), with a correlation id
and the worker's reply queue: `started` (count the attempt; answered `run` true or false),
`call` (a `Supervisor` method; answered with its value or an error) and `done` (the outcome;
answered once recorded, so the worker acknowledges the task only then).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any, Literal

from ...model._base import Frozen
from ...runtimes.api import Invocation, RunResult

#: The Celery task name a worker registers and the dispatcher sends.
RUN_TASK = "qbcallbacks.run"
#: The queue runs are sent to and workers consume by default, and the environment variable
#: that names another one (read by both sides).
RUN_QUEUE = "qbcallbacks"
QUEUE_ENV = "QBCALLBACKS_QUEUE"
#: The environment variable a worker reads its broker URL from.
BROKER_ENV = "QBCALLBACKS_BROKER"
#: Seconds after a run's deadline at which Celery's soft limit, then its hard limit, fire:
#: the runtime stops a script at the deadline itself; the limits stop a run that hangs anyway.
SOFT_GRACE = 2.0
HARD_GRACE = 5.0
#: Supervisor methods a worker may call on the dispatcher's supervisor.
SUPERVISOR_METHODS = frozenset({"jobinfo", "job_action", "work_action", "subjob_action",
                                "mail"})

Op = Literal["started", "call", "done"]


class RemoteRun(Frozen):
    """One run as a worker receives it: the firing, what it runs as, and where to answer."""

    firing: int
    job: int
    #: The runtime extension (`py`, `pl`, `qcb`, ...).
    runtime: str
    invocation: dict[str, Any]
    #: SHA-256 of the script when the dispatcher matched it; None for inline code or a
    #: script it could not read (the run then fails on the worker as it would locally).
    script_hash: str | None = None
    #: The dispatcher's queue for `started`, `call` and `done`.
    calls: str

    def to_invocation(self) -> Invocation:
        return Invocation.model_validate(self.invocation)


def run_queue() -> str:
    """The queue of runs: `QBCALLBACKS_QUEUE`, else `RUN_QUEUE`."""
    return os.environ.get(QUEUE_ENV, "").strip() or RUN_QUEUE


def run_message(firing: int, job: int, runtime: str, invocation: Invocation,
                script_hash: str | None, calls: str) -> dict[str, Any]:
    """The task argument for one run (plain JSON)."""
    return RemoteRun(firing=firing, job=job, runtime=runtime,
                     invocation=invocation.model_dump(mode="json"),
                     script_hash=script_hash, calls=calls).model_dump(mode="json")


def script_hash(path: Path | None) -> str | None:
    """The SHA-256 of a script's bytes; None for inline code or an unreadable file."""
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def result_to_wire(result: RunResult) -> dict[str, Any]:
    return result.model_dump(mode="json")


def result_from_wire(data: Any) -> RunResult:
    """A run's outcome as a worker sent it; something unreadable is a crashed run."""
    try:
        return RunResult.model_validate(data)
    except ValueError as exc:
        return RunResult(status="crashed", error=f"the worker sent an unreadable outcome: {exc}")


def kombu() -> Any:
    """Celery's messaging library, loaded when first needed (it is an optional extra)."""
    return importlib.import_module("kombu")
