"""The body of a run on a worker: check the script, count the attempt, run, report.

One set of runtimes and one `Link` per worker process, made at its first run (after the
fork) and closed when the process ends. The order matters: a script whose hash differs is
refused before anything runs; the attempt is counted by the dispatcher before the run (a
dispatcher that is there but does not answer gets the run back later, one that is gone
leaves it to its trail's recovery); the outcome is acknowledged by the dispatcher before
Celery acknowledges the task, so a worker lost at any point leaves the run to be delivered
again.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from ..dispatch.remote.link import DispatcherGone, Link, LinkError, RemoteSupervisor
from ..dispatch.remote.wire import RemoteRun, result_to_wire, script_hash
from ..dispatch.runner import build_runtimes
from ..runtimes.api import Invocation, RunResult, Runtime

log = logging.getLogger("qbcallbacks.remote")

#: Seconds a worker waits for the dispatcher to count an attempt, and to record an outcome.
START_WAIT = 30.0
DONE_WAIT = 30.0
REFUSED = ("the script on this worker differs from the one the dispatcher matched "
           "(its content hash changed); not run")


@dataclass
class _Process:
    pid: int
    link: Link
    supervisor: RemoteSupervisor
    runtimes: dict[str, Runtime]


_here: _Process | None = None


def _process(broker: str) -> _Process:
    """This process's link and runtimes (made anew in a forked child)."""
    global _here
    if _here is None or _here.pid != os.getpid():
        link = Link(broker)
        supervisor = RemoteSupervisor(link)
        runtimes = build_runtimes(supervisor, pool_sizes={"py": 1, "pl": 1})
        _here = _Process(os.getpid(), link, supervisor, runtimes)
    return _here


def close_process() -> None:
    global _here
    here, _here = _here, None
    if here is not None and here.pid == os.getpid():
        for runtime in here.runtimes.values():
            runtime.close()
        here.link.close()


def run_remote(broker: str, message: dict[str, Any]) -> str:
    """Run the firing `message` describes and report it; returns `refused`, `skipped` (the
    dispatcher said not to, or is gone) or the run's status."""
    spec = RemoteRun.model_validate(message)
    here = _process(broker)
    invocation = spec.to_invocation()
    if spec.script_hash is not None and script_hash(invocation.path) != spec.script_hash:
        _report(here.link, spec, RunResult(status="refused", error=REFUSED))
        return "refused"
    at = time.time()
    try:
        answer = here.link.request(spec.calls, "started", {"firing": spec.firing, "at": at},
                                   START_WAIT)
    except LinkError as exc:
        if _alive(here.link, spec.calls, exc):  # slow (its trail is failing): later
            from celery.exceptions import Reject

            raise Reject(f"firing {spec.firing}: no answer yet ({exc})", requeue=True) from exc
        log.warning("firing %d not run, its dispatcher is gone: %s", spec.firing, exc)
        return "skipped"  # the trail's recovery at the dispatcher's next start owns it
    if answer.get("run") is not True:
        return "skipped"
    result = _run(here, spec.runtime, invocation, spec.calls)
    _report(here.link, spec, result.model_copy(update={"started_at": at}))
    return result.status


def _run(here: _Process, ext: str, invocation: Invocation, calls: str) -> RunResult:
    from celery.exceptions import SoftTimeLimitExceeded

    runtime = here.runtimes.get(ext)
    if runtime is None:
        return RunResult(status="error", error=f"no runtime for {ext!r} callbacks on this worker")
    here.supervisor.aim(calls, time.monotonic() + invocation.timeout)
    started = time.monotonic()
    try:
        return runtime.run(invocation)
    except SoftTimeLimitExceeded:
        return RunResult(status="timeout", duration=time.monotonic() - started,
                         error="the run outlived its deadline on the worker and was stopped "
                               "by the soft time limit")
    except Exception as exc:  # a runtime bug is this run's failure, not the worker's
        return RunResult(status="crashed", error=f"runtime failed: {exc!r}",
                         duration=time.monotonic() - started)
    finally:
        here.supervisor.aim("", 0.0)


def _report(link: Link, spec: RemoteRun, result: RunResult) -> None:
    """Hand the outcome to the dispatcher; with no answer from a dispatcher that is still
    there, give the task back to the broker (delivered again: the dispatcher records
    whichever outcome reaches it first); one that is gone has its trail's recovery."""
    from celery.exceptions import Reject

    try:
        link.request(spec.calls, "done",
                     {"firing": spec.firing, "result": result_to_wire(result)}, DONE_WAIT)
    except LinkError as exc:
        if _alive(link, spec.calls, exc):
            raise Reject(f"the outcome of firing {spec.firing} was not recorded: {exc}",
                         requeue=True) from exc
        log.warning("the outcome of firing %d was not recorded, its dispatcher is gone",
                    spec.firing)


def _alive(link: Link, calls: str, exc: LinkError) -> bool:
    """Whether a dispatcher that did not answer is still there (then it gets the run back)."""
    return not isinstance(exc, DispatcherGone) and link.dispatcher_alive(calls)


def report_hard_limit(broker: str, message: Any, exc: BaseException) -> None:
    """From the worker's main process: the run's process was killed at the hard limit."""
    try:
        spec = RemoteRun.model_validate(message)
        result = RunResult(status="timeout", error=f"the run hung past its deadline and was "
                                                   f"killed by the hard time limit ({exc})")
        link = Link(broker)
        try:
            link.send(spec.calls, "done",
                      {"firing": spec.firing, "result": result_to_wire(result)})
        finally:
            link.close()
    except Exception:  # the worker must go on; the dispatcher's trail keeps the firing
        log.exception("a hard time limit could not be reported")
