"""What a dispatcher is told: limits, policies and durability, in one frozen settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..errors import QbCallbacksError
from ..matching.matcher import AttachPolicy
from ..model._base import Frozen


class BackPressureError(QbCallbacksError):
    """The event was not taken; the supervisor must retry it later or slow down."""


class DispatcherUnavailable(BackPressureError):
    """The event was not taken because the journal or the audit trail cannot be written; the
    message names the cause, and `Dispatcher.health` says so until the fault clears."""


class DispatcherClosed(QbCallbacksError):
    """`emit` after `close()`."""


class DispatcherSettings(Frozen):
    """Limits and policies; defaults suit a supervisor with a few thousand jobs."""

    #: Events waiting to be matched before `emit` starts to wait.
    queue_size: int = Field(default=10_000, ge=1)
    #: Seconds `emit` waits for room in a full queue before raising `BackPressureError`.
    emit_timeout: float = Field(default=1.0, ge=0)
    #: Runs in progress at once, over all runtimes.
    max_runs: int = Field(default=8, ge=1)
    #: Runs in progress at once per runtime extension (`py`, `pl`, `qcb`, ...).
    per_runtime: dict[str, int] = Field(default_factory=lambda: {"py": 4, "pl": 2, "qcb": 8})
    #: Default seconds a run may take.
    timeout: float = Field(default=30.0, gt=0)
    #: Per-rule timeouts by callback file name (or `job:<id>#<i>`).
    rule_timeouts: dict[str, float] = Field(default_factory=dict)
    #: Firings waiting or running before the matcher pauses (events then wait in the
    #: journal and the queue, and a full queue pushes back on `emit`): bounds memory.
    max_backlog: int = Field(default=10_000, ge=1)
    #: Events matched per audit transaction at most.
    batch: int = Field(default=512, ge=1)
    #: How long (seconds) the matcher thread lets a small batch grow before it matches and
    #: records it: a trail transaction and a wake-up are paid per batch, so a steady trickle
    #: of events costs far less CPU taken a few milliseconds' worth at a time. 0: never wait.
    gather: float = Field(default=0.02, ge=0, le=1)
    #: What to do with firings a crashed host left pending: run them again or mark them `lost`.
    recovery: Literal["rerun", "report"] = "rerun"
    #: How many times a firing that was running when the host died is run again; after that
    #: it is marked `lost` (a callback that kills the host cannot kill it at every start).
    max_reruns: int = Field(default=1, ge=0)
    #: Where `<jobid>.cb` callback logs go; None keeps output in the audit trail only.
    log_dir: str | None = None
    #: `normal`: an accepted event and a commit survive a killed host; `full`: they also
    #: survive a power loss (an fsync per group of emits and per commit).
    synchronous: Literal["normal", "full"] = "normal"
    #: Seconds a whole reload may take (read, number, build); a slower one changes nothing
    #: and says why (QCB150).
    reload_budget: float = Field(default=10.0, gt=0)
    #: Seconds SQLite waits for a lock before a write counts as failed (and is retried).
    busy_timeout: float = Field(default=5.0, ge=0)
    #: Longest pause between retries of a failing audit write.
    retry_max: float = Field(default=1.0, gt=0)
    #: Run job-specific Python and Perl callbacks (see `runtimes.policy`); off by default.
    allow_job_code: bool = False
    #: Take global callbacks (`Dispatcher.submit_global`, the service, `qbcallbacks global`);
    #: off by default, like job code (qb.conf `supervisor_global_callbacks = true`).
    allow_global_callbacks: bool = False
    #: `scheduled`: raise time events when the clock reaches them; `stream`: raise none, the
    #: events given to `emit` carry them (a replay: it runs its stream's events only).
    time_events: Literal["scheduled", "stream"] = "scheduled"
    #: After a reload, a live job keeps the rules it was attached under (`submission`, the
    #: original's) or takes the new set (`live`); see `spec/semantics.md`.
    attach: AttachPolicy = "submission"
    #: Where runs happen: `local` (this host's pools) or `celery` (Celery workers reached
    #: through `broker`; see `dispatch.remote`).
    executor: Literal["local", "celery"] = "local"
    #: The broker URL of the `celery` executor (`amqp://user:password@host:port/vhost`).
    broker: str | None = None

    @model_validator(mode="after")
    def _broker_for_celery(self) -> DispatcherSettings:
        if self.executor == "celery" and not self.broker:
            raise ValueError("the celery executor needs a broker URL")
        return self


class Health(Frozen):
    """Whether the dispatcher can take events; `problem` names the cause when it cannot."""

    ok: bool = True
    problem: str | None = None
    since: float | None = None
