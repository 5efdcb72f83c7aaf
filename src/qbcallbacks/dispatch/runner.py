"""Where a recorded firing becomes a run: the one place a firing meets a runtime.

`Runner.invocation` decides what a firing runs as (a policy that refuses a firing belongs
here, before the attempt is counted); `Runner.run` counts the attempt durably, runs it, and
turns any runtime failure into this run's outcome rather than the host's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..audit.records import PendingFiring
from ..model.languages import runtime_extension
from ..model.supervisor import Supervisor
from ..runtimes.api import Invocation, PythonMode, RunResult, Runtime, RuntimeSettings
from ..runtimes.api import runtime_classes as _runtime_classes
from .settings import DispatcherSettings


def build_runtimes(supervisor: Supervisor, *, mode: PythonMode = "isolated",
                   pool_sizes: Mapping[str, int] | None = None,
                   settings: RuntimeSettings | None = None) -> dict[str, Runtime]:
    """One runtime per registered extension, bound to `supervisor`, pools sized to the
    dispatcher's per-runtime limits (a bigger pool than the limit would only idle)."""
    sizes = dict(pool_sizes or {})
    out: dict[str, Runtime] = {}
    for ext, cls in _runtime_classes().items():
        overrides: dict[str, object] = {"mode": mode}
        if ext in sizes:
            overrides["pool_size"] = max(1, min(64, sizes[ext]))
        out[ext] = cls(supervisor, settings, **overrides)
    return out


class Runner:
    """Runs recorded firings on the runtimes; `count_attempt` makes the attempt durable."""

    def __init__(self, runtimes: Mapping[str, Runtime], settings: DispatcherSettings,
                 count_attempt: Callable[[int, float], object]) -> None:
        self.runtimes = dict(runtimes)
        self.settings = settings
        self.log_dir = Path(settings.log_dir) if settings.log_dir else None
        self._count_attempt = count_attempt

    def invocation(self, firing: PendingFiring) -> Invocation | RunResult:
        """What `firing` runs as, or the outcome that stands for a run that must not happen."""
        if runtime_extension(firing.language) not in self.runtimes:
            return RunResult(status="error", error=f"no runtime for {firing.language!r} callbacks")
        timeout = self.settings.rule_timeouts.get(firing.callback, self.settings.timeout)
        return Invocation(
            callback=firing.callback, path=firing.path, code=firing.code, job_id=firing.job,
            event=firing.event, timeout=timeout,
            log_path=None if self.log_dir is None else self.log_dir / f"{firing.job}.cb")

    def run(self, firing: PendingFiring) -> tuple[RunResult, float]:
        """Run one firing; returns its outcome and when it started."""
        started = time.time()
        planned = self.invocation(firing)
        if isinstance(planned, RunResult):
            return planned, started
        self._count_attempt(firing.id, started)
        runtime = self.runtimes[runtime_extension(firing.language)]
        try:
            return runtime.run(planned), started
        except Exception as exc:  # a runtime bug is this run's failure, not the host's
            return RunResult(status="crashed", error=f"runtime failed: {exc!r}",
                             duration=time.time() - started), started

    def close(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()
