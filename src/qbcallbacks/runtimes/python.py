"""Python callbacks, in warm isolated workers (default) or in the host process.

`PythonRuntime(supervisor, mode="isolated")` keeps up to `pool_size` worker processes
(`python -I`, started on the first run) that run one callback each at a time; their `qb` calls
come back over a pipe and are answered here. A worker that overruns its timeout, exits with
`os._exit`, segfaults or breaks the protocol is killed (with its process group) and replaced,
and the run is reported as `timeout` or `crashed`. See `pool` for the protocol and
`workers/python_worker` for the worker.

A worker runs many callbacks in turn, each from a clean slate: a fresh `qb` module and
globals, and the process state a script can change put back after it (see
`workers/python_worker`); a worker left in a state that cannot be put back is replaced before
its next run, and every worker is replaced after `max_runs_per_worker` runs anyway. All run as
the supervisor's user, as in the original. After `close()` a later `run` starts a fresh pool.

`mode="in-process"` runs scripts on threads of the host for the lowest latency; it is for
sites that trust their scripts: see `inprocess` for what it cannot protect against.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import Diagnostic
from ..model.limits import default_limits
from ..model.supervisor import Supervisor
from .api import (
    Invocation,
    RunResult,
    Runtime,
    RuntimeConfigError,
    RuntimeSettings,
    child_environment,
    finish,
    python_executable,
    workdir_of,
)
from .inprocess import InProcessRunner
from .pool import Worker, WorkerPool, run_in_pool
from .qb.answers import answer
from .validate import python_syntax

_HERE = Path(__file__).resolve().parent
WORKER_MAIN = _HERE / "workers" / "python_worker.py"
QB_MODULE = _HERE / "qb" / "module.py"
OUTCOME_MODULE = _HERE / "outcome.py"


class PythonRuntime(Runtime):
    def __init__(self, supervisor: Supervisor | None = None,
                 settings: RuntimeSettings | None = None, **overrides: Any) -> None:
        super().__init__(supervisor, settings, **overrides)
        workdir = self.settings.workdir
        if (self.settings.mode == "in-process" and workdir is not None
                and os.path.realpath(workdir) != os.path.realpath(os.getcwd())):
            raise RuntimeConfigError(
                "in-process Python runs in the host's working directory (it is process-wide); "
                "leave workdir unset or use mode='isolated'")
        self._lock = threading.Lock()
        self._pool: WorkerPool | None = None
        self._inprocess: InProcessRunner | None = None
        self._cwd = ""

    @property
    def stuck_threads(self) -> int:
        """In-process mode: threads of timed-out callbacks that are still running."""
        return self._inprocess.stuck_threads if self._inprocess is not None else 0

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Isolated mode: process ids of the warm workers waiting for a run (none before the
        first run or `warm`, after `close`, or in-process)."""
        pool = self._pool
        return pool.idle_pids() if pool is not None else ()

    def validate(self, path: Path) -> list[Diagnostic]:
        """Compile the script; a syntax error comes back with its line and column."""
        return python_syntax(path)

    def run(self, invocation: Invocation) -> RunResult:
        supervisor = self.require_supervisor()
        if (invocation.path is None) == (invocation.code is None):
            return finish(invocation, RunResult(
                status="error", error="an invocation needs exactly one of a path or inline code"))
        cap = self.settings.output_cap
        if self.settings.mode == "in-process":
            result = self._runner().run(invocation, supervisor, cap)
        else:
            pool = self._workers()
            result = run_in_pool(pool, invocation, _request(invocation, cap, self._cwd),
                                 functools.partial(answer, supervisor), cap)
        return finish(invocation, result, self.settings)

    def warm(self) -> None:
        if self.settings.mode == "isolated":
            self._workers().warm()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            runner, self._inprocess = self._inprocess, None
        if pool is not None:
            pool.close()
        if runner is not None:
            runner.close()

    def _runner(self) -> InProcessRunner:
        with self._lock:
            if self._inprocess is None:
                self._inprocess = InProcessRunner(max_idle=self.settings.pool_size)
            return self._inprocess

    def _workers(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                settings = self.settings
                argv = [python_executable(settings), "-I", str(WORKER_MAIN), str(QB_MODULE),
                        str(OUTCOME_MODULE)]
                env = child_environment(settings)
                cwd = self._cwd = workdir_of(settings)
                self._pool = WorkerPool(lambda: Worker(argv, env, cwd), settings.pool_size,
                                        settings.max_runs_per_worker)
            return self._pool


def _request(invocation: Invocation, cap: int, cwd: str) -> dict[str, Any]:
    limits = default_limits()
    return {
        "op": "run", "name": invocation.source_name, "cap": cap,
        "path": None if invocation.path is None else str(invocation.path),
        "code": invocation.code, "jobid": invocation.job_id, "workid": invocation.work_name,
        "subid": invocation.subjob_id, "event": invocation.event.format(),
        "cwd": cwd, "max_args": limits.max_qb_args, "max_arg_size": limits.max_qb_arg_size,
        "max_bytes": limits.max_script_bytes,
    }
