"""Where a recorded firing meets a runtime: the runtimes a dispatcher builds, and what a firing
runs as. Any executor uses `plan`, so a run's deadline and log are decided the same way
wherever it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..audit.records import PendingFiring
from ..model._base import trusted
from ..model.supervisor import Supervisor
from ..runtimes.api import Invocation, PythonMode, Runtime, RuntimeSettings
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


def plan(firing: PendingFiring, settings: DispatcherSettings) -> Invocation:
    """What `firing` runs as: its script or code, its job and event, its deadline (the rule's
    own timeout or the default) and the job's `.cb` log under `log_dir`.

    Every value was validated where it was made (the firing, the settings), so the invocation
    is built without validating them again, on every firing's path."""
    log_dir = Path(settings.log_dir) if settings.log_dir else None
    return trusted(
        Invocation,
        callback=firing.callback, path=firing.path, code=firing.code, job_id=firing.job,
        event=firing.event, timeout=settings.rule_timeouts.get(firing.callback, settings.timeout),
        log_path=None if log_dir is None else log_dir / f"{firing.job}.cb")
