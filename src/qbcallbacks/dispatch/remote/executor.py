"""`CeleryExecutor`: the dispatcher's runs go to Celery workers through a broker.

The dispatcher keeps matching, the journal and the trail (one writer per trail); only runs
leave. Per-job order is the executor's: a job's firings wait here in firing order and the
next one is released to the broker only when the one before it has completed, so the broker
never holds two runs of one job and no number of workers can reorder them; different jobs
run side by side. Workers take one run at a time per process (prefetch multiplier 1 with late
acknowledgement), so a slow run never holds back another job's run that waits behind it.

Each script's SHA-256 is taken when the firing is submitted, right after it matched; a worker
whose copy differs refuses the run, and the refusal is recorded. The attempt is counted when
a worker starts (a run redelivered after a worker died counts again); the outcome is
recorded once, the first to arrive: a late duplicate of a finished firing is answered and
ignored, so a firing is never recorded twice. A run killed by its hard time limit is
reported `timeout` by its worker; should that report never come (a worker host gone with no
redelivery), a watch records it `timeout` once its hard limit and `WATCH_SLACK` have passed.

While the broker is out of reach, runs wait here (each job's next one; the matcher pauses at
`max_backlog`) and `health` says why; the watch sends them once the broker is back and the
dispatcher's own queue is declared again, so no run goes out that could not report back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ...audit.records import PendingFiring
from ...errors import QbCallbacksError
from ...model.languages import runtime_extension
from ...model.supervisor import HostError, MailMessage, Supervisor
from ...runtimes.api import RunResult
from ..executor import CANCELLED, Completions
from ..runner import plan
from ..settings import DispatcherSettings, Health
from .hub import Hub
from .wire import (
    HARD_GRACE,
    RUN_TASK,
    SOFT_GRACE,
    SUPERVISOR_METHODS,
    result_from_wire,
    run_message,
    run_queue,
    script_hash,
)

log = logging.getLogger("qbcallbacks.remote")


class CeleryMissing(QbCallbacksError):
    """The celery executor was chosen where Celery is not installed."""


#: Seconds past a run's hard limit after which the dispatcher stops waiting for its outcome.
WATCH_SLACK = 10.0


@dataclass
class _Run:
    firing: PendingFiring
    script_hash: str | None
    #: When its latest attempt must be over (monotonic), once a worker started it.
    due: float | None = None


class CeleryExecutor:
    """Sends runs to Celery workers on `broker` (see the module); `queue` is the queue
    the workers consume (default `wire.run_queue()`); a run's Celery soft and hard time
    limits are its deadline plus `soft_grace` and `hard_grace` seconds; a started run
    with no outcome `watch_slack` seconds after that is recorded `timeout`."""

    settings: DispatcherSettings
    _completions: Completions
    _supervisor: Supervisor

    def __init__(self, broker: str, *, queue: str | None = None,
                 soft_grace: float = SOFT_GRACE, hard_grace: float = HARD_GRACE,
                 watch_slack: float = WATCH_SLACK) -> None:
        self.broker, self.queue = broker, queue or run_queue()
        self.soft_grace, self.hard_grace = soft_grace, max(hard_grace, soft_grace)
        self.watch_slack = watch_slack
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._open: dict[int, _Run] = {}
        self._jobs: dict[int, deque[_Run]] = {}
        self._cancelling = False
        self._problem: tuple[str, float] | None = None
        self._unsent: list[_Run] = []
        self._app: Any = None

    def start(self, completions: Completions, settings: DispatcherSettings,
              supervisor: Supervisor) -> None:
        try:
            from celery import Celery
        except ImportError:
            raise CeleryMissing("the celery executor needs Celery: "
                                "pip install 'qbcallbacks[celery]'") from None
        self._completions, self.settings, self._supervisor = completions, settings, supervisor
        self._app = Celery("qbcallbacks-dispatcher", set_as_current=False)
        self._app.config_from_envvar("CELERY_CONFIG_MODULE", silent=True)  # as the workers
        self._app.conf.update(broker_url=self.broker, task_serializer="json",
                              accept_content=["json"], task_ignore_result=True,
                              broker_connection_retry=False)
        self.hub = Hub(self.broker, self.answer)
        self.hub.start()
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._watch_runs, name="qbcb-watch", daemon=True)
        self._watch.start()

    def submit(self, firing: PendingFiring) -> None:
        run = _Run(firing, script_hash(firing.path))  # the script as it matched
        with self._lock:
            cancelled = self._cancelling
            if not cancelled:
                self._open[firing.id] = run
                lane = self._jobs.setdefault(firing.job, deque())
                lane.append(run)
                if len(lane) > 1:
                    return  # released when the run before it in this job completes
        if cancelled:
            self._completions.complete(firing.id, RunResult(status="cancelled",
                                                            error=CANCELLED))
        else:
            self._release(run)

    def cancel(self) -> None:
        with self._lock:
            self._cancelling = True
            waiting = [run for lane in self._jobs.values() for run in list(lane)[1:]]
            waiting += self._unsent
            self._unsent = []
        for run in waiting:  # the other heads are at the broker: cancelled when started
            self._finish(run.firing.id, RunResult(status="cancelled", error=CANCELLED))

    def close(self) -> None:
        self._stop.set()
        self._watch.join(5)
        self.hub.stop()
        if self._app is not None:
            self._app.close()

    def health(self) -> Health:
        problem = self._problem or self.hub.problem
        if problem is None:
            return Health()
        return Health(ok=False, problem=problem[0], since=problem[1])

    @property
    def waiting(self) -> int:
        """Firings submitted and not completed (at the broker, running, or held for order)."""
        with self._lock:
            return len(self._open)

    def _release(self, run: _Run | None) -> None:
        """Send `run`, the head of its job, to the broker. While the broker is out of reach
        it waits in `_unsent` for the watch to send it again (`health` says why); a run that
        cannot be described at all is completed `crashed` and the next of its job goes."""
        while run is not None:
            if self._cancelling:
                run = self._complete(run.firing.id, RunResult(status="cancelled",
                                                              error=CANCELLED))
                continue
            try:
                message, timeout = self._message(run.firing, run.script_hash)
            except Exception as exc:  # a bug, not the broker: this run cannot go
                log.exception("the run of firing %d could not be described", run.firing.id)
                run = self._complete(run.firing.id, RunResult(
                    status="crashed", error=f"the run could not be sent: {exc}"))
                continue
            if not self.hub.ready:  # a run sent now could not report back: hold it
                with self._lock:
                    self._unsent.append(run)
                return
            try:
                with self._send_lock:
                    self._app.send_task(RUN_TASK, args=[message], queue=self.queue,
                                        retry=False,  # submit returns at once; we retry
                                        soft_time_limit=timeout + self.soft_grace,
                                        time_limit=timeout + self.hard_grace)
            except Exception as exc:  # the broker is out of reach: hold it, try again
                if self._problem is None:
                    log.error("the broker is out of reach; runs wait: %s", exc)
                    self._problem = (f"the broker is out of reach: {exc}", time.time())
                with self._lock:
                    self._unsent.append(run)
                return
            self._problem = None
            return

    def _message(self, firing: PendingFiring, digest: str | None) -> tuple[dict[str, Any],
                                                                          float]:
        invocation = plan(firing, self.settings)
        return run_message(firing.id, firing.job, runtime_extension(firing.language),
                           invocation, digest, self.hub.name), invocation.timeout

    def _resend(self) -> None:
        """Send again what the broker did not take, until it refuses again."""
        with self._lock:
            held, self._unsent = self._unsent, []
        for i, run in enumerate(held):
            with self._lock:
                if run.firing.id not in self._open:  # cancelled meanwhile
                    continue
            self._release(run)
            if self._problem is not None or not self.hub.ready:
                with self._lock:
                    self._unsent.extend(held[i + 1:])
                return

    def _complete(self, firing_id: int, result: RunResult) -> _Run | None:
        """Record the outcome if the firing is still open (the first outcome wins) and give
        the next run of its job; None when there is none, or it was already recorded."""
        with self._lock:
            run = self._open.pop(firing_id, None)
            if run is None:
                return None
            lane = self._jobs[run.firing.job]
            was_head = lane[0] is run
            lane.remove(run)
            following = lane[0] if lane and was_head else None  # else already sent
            if not lane:
                del self._jobs[run.firing.job]
        self._completions.complete(firing_id, result)
        return following

    def _finish(self, firing_id: int, result: RunResult) -> bool:
        with self._lock:
            known = firing_id in self._open
        self._release(self._complete(firing_id, result))
        return known

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """A worker's request (`wire`), answered: the hub calls it on its threads, and a
        request can be put to it directly, without a broker."""
        op, firing = request.get("op"), request.get("firing")
        if op == "call":
            return self._call(request.get("method"), request.get("args"))
        if not isinstance(firing, int) or isinstance(firing, bool):
            return {"error": "a request without a firing id"}
        if op == "started":
            at = request.get("at")
            return {"run": self._started(firing, at if isinstance(at, float) else time.time())}
        if op == "done":
            return {"recorded": self._finish(firing, result_from_wire(request.get("result")))}
        return {"error": f"unknown request {op!r}"}

    def _started(self, firing_id: int, at: float) -> bool:
        with self._lock:
            run = self._open.get(firing_id)
        if run is None:  # a redelivery of a run already recorded: nothing to do
            return False
        if self._cancelling:
            self._finish(firing_id, RunResult(status="cancelled", error=CANCELLED))
            return False
        if self._completions.started(firing_id, at):
            timeout = plan(run.firing, self.settings).timeout
            run.due = time.monotonic() + timeout + self.hard_grace + self.watch_slack
            return True
        with self._lock:  # the trail is being given up: forget it, it stays pending
            if self._open.pop(firing_id, None) is not None:
                self._jobs.pop(run.firing.job, None)
        return False

    def _watch_runs(self) -> None:
        """Send again what the broker did not take; record `timeout` for started runs whose
        outcome is overdue (see the module)."""
        while not self._stop.wait(1.0):
            if self._unsent and self.hub.ready:
                self._resend()
            now = time.monotonic()
            with self._lock:
                overdue = [r.firing.id for r in self._open.values()
                           if r.due is not None and r.due < now]
            for firing_id in overdue:
                log.error("no outcome for firing %d past its hard time limit", firing_id)
                self._finish(firing_id, RunResult(
                    status="timeout", error="no outcome came from the worker within the run's "
                                            "hard time limit; its worker is presumed lost"))

    def _call(self, method: Any, args: Any) -> dict[str, Any]:
        """A `qb` call of a remote run, answered by this dispatcher's supervisor."""
        if method not in SUPERVISOR_METHODS or not isinstance(args, list):
            return {"error": f"no supervisor method {method!r}", "host": True}
        try:
            if method == "mail":
                args = [MailMessage.model_validate(args[0] if args else None)]
            return {"value": getattr(self._supervisor, method)(*args)}
        except (HostError, ValueError, TypeError) as exc:
            return {"error": str(exc), "host": True}
        except Exception as exc:  # the supervisor's own fault: the script sees an error
            log.exception("the supervisor failed answering %s", method)
            return {"error": f"the supervisor failed: {type(exc).__name__}: {exc}"}
