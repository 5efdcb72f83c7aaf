"""The seam between recording a firing and running it: the `Executor` and its `Completions`.

The contract, for any executor (the local one below, or one that sends runs elsewhere):

- `start(completions, settings, supervisor)` is called once, before any `submit`, with the
  dispatcher's recorder, its settings (limits and deadlines) and the supervisor that
  answers the scripts' `qb` calls.
- `submit(firing)` is called from the matcher thread only, one firing at a time, each already
  recorded in the trail (it has its id), counted as in flight and allowed by the job-code
  policy. It must return at once: the run happens behind it. Firings of one attached job
  (`firing.job`) must run one at a time, in submission order, across events too; different
  jobs may run side by side. A `submit` that raises has not taken the firing: it is
  recorded `crashed` with the error. What an executor holds is bounded: the matcher thread
  takes no more events while `max_backlog` firings are in flight.
- For each run, from whatever thread runs it: `completions.started(firing.id, at)` just
  before the run (this counts the attempt durably, so a run that kills its host is known
  at the next start). If it returns False the trail is being given up while closing: do not
  run the firing and do not complete it (it stays pending for the next start). Otherwise,
  when the run ends, `completions.complete(firing.id, result)` with its `RunResult`
  (`started_at` set). A run's deadline is `plan(firing, settings).timeout` seconds; the
  `qb` calls the script makes are answered by that supervisor within the deadline.
- Every submitted firing gets exactly one `complete` (or a `started` that returned False):
  a firing that cannot run is completed `crashed`, `error` or `cancelled`, never dropped,
  because `wait_idle` and `close` wait for its count. `complete` may be called from any
  thread, concurrently; it never raises.
- `cancel()` (while closing without a drain): every firing not yet started, now or later
  submitted, is completed `cancelled` instead of run; runs in progress finish.
- `close()` is called last, after the matcher thread stopped (no more submits): it waits
  for runs in progress and releases what the executor holds.
- `health()` says whether runs can go on and, when not, why and since when (a broker out of
  reach); `Dispatcher.health` reports it. `emit` keeps taking events meanwhile: they wait
  in the journal and the trail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Protocol

from ..audit.records import PendingFiring
from ..model._base import trusted_from
from ..model.languages import runtime_extension
from ..model.supervisor import Supervisor
from ..runtimes.api import PythonMode, RunResult, Runtime
from .lanes import Lanes
from .runner import build_runtimes, plan
from .settings import DispatcherSettings, Health

log = logging.getLogger("qbcallbacks.dispatch")

#: Why a firing cancelled by `close(drain=False)` did not run.
CANCELLED = "dispatcher closed before the run started"


class Completions(Protocol):
    """Where an executor reports runs; the dispatcher's recorder."""

    def started(self, firing_id: int, at: float) -> bool:
        """Count the attempt durably before the run; False: do not run it (see the module)."""
        ...

    def complete(self, firing_id: int, result: RunResult) -> None:
        """Record how the firing ended and release its count; never raises."""
        ...


class Executor(Protocol):
    """Runs recorded firings and reports their outcomes (the contract is the module's)."""

    def start(self, completions: Completions, settings: DispatcherSettings,
              supervisor: Supervisor) -> None: ...

    def submit(self, firing: PendingFiring) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...

    def health(self) -> Health: ...


class LocalExecutor:
    """Runs firings in this host: per-job lanes feeding per-runtime pools under one overall
    limit (`max_runs`, `per_runtime`). On the given runtimes, or on runtimes of its own
    (built at `start`, bound to the supervisor, closed with the executor)."""

    runtimes: dict[str, Runtime]
    settings: DispatcherSettings
    _completions: Completions
    _lanes: Lanes

    def __init__(self, runtimes: Mapping[str, Runtime] | None = None, *,
                 mode: PythonMode = "isolated") -> None:
        self._given = None if runtimes is None else dict(runtimes)
        self._mode: PythonMode = mode
        self._cancelling = False

    def start(self, completions: Completions, settings: DispatcherSettings,
              supervisor: Supervisor) -> None:
        self._completions, self.settings = completions, settings
        self.runtimes = self._given if self._given is not None else build_runtimes(
            supervisor, mode=self._mode, pool_sizes=settings.per_runtime)
        self._lanes = Lanes(self._run, overall=settings.max_runs,
                            per_runtime=settings.per_runtime,
                            default_per_runtime=settings.max_runs)

    def submit(self, firing: PendingFiring) -> None:
        if self._cancelling:
            self._report(firing.id, RunResult(status="cancelled", error=CANCELLED))
        else:
            self._lanes.submit(firing)

    def cancel(self) -> None:
        self._cancelling = True
        for firing in self._lanes.cancel_waiting():
            self._report(firing.id, RunResult(status="cancelled", error=CANCELLED))

    def close(self) -> None:
        self._lanes.close()
        if self._given is None:
            for runtime in self.runtimes.values():
                runtime.close()

    def health(self) -> Health:
        return Health()

    def _report(self, firing_id: int, result: RunResult) -> None:
        self._completions.complete(firing_id, result)

    def _run(self, firing: PendingFiring) -> None:
        """The body of one run on a pool thread; whatever happens, the firing is completed."""
        try:
            result = self._outcome(firing)
        except Exception:  # never lose the count: the run is over, whatever happened
            log.exception("run of %s failed in the dispatcher", firing.callback)
            result = RunResult(status="crashed", error="the dispatcher failed around this run")
        if result is not None:
            self._report(firing.id, result)

    def _outcome(self, firing: PendingFiring) -> RunResult | None:
        if self._cancelling:
            return RunResult(status="cancelled", error=CANCELLED)
        runtime = self.runtimes.get(runtime_extension(firing.language))
        if runtime is None:
            return RunResult(status="error",
                             error=f"no runtime for {firing.language!r} callbacks")
        started = time.time()
        if not self._completions.started(firing.id, started):
            return None
        try:
            result = runtime.run(plan(firing, self.settings))
        except Exception as exc:  # a runtime bug is this run's failure, not the host's
            result = RunResult(status="crashed", error=f"runtime failed: {exc!r}",
                               duration=time.time() - started)
        # The result with its start (a copy of valid data: no validation).
        return trusted_from(RunResult, {**result.__dict__, "started_at": started})
