"""The one small interface every callback language implements, and how runtimes are found.

Ours are registered in code and a site adds a language from its own package by declaring an
entry point in the group `qbcallbacks.runtimes`, without touching ours (see `registry`).

Constructing a runtime
----------------------
Every runtime takes the same arguments::

    runtime = PythonRuntime(supervisor, mode="in-process", workdir="/var/spool/qbcb")
    runtime = PerlRuntime(supervisor, settings=RuntimeSettings(pool_size=4))
    runtime = QcbRuntime()              # validate-only; bind(supervisor) before run()

`supervisor` answers the script's `qb` calls (and qcb commands); it may be given later with
`bind`. Keyword overrides are fields of :class:`RuntimeSettings`. Construction is cheap and
starts nothing (the loader builds runtimes only to call `validate`); worker processes start on
the first `run` (or `warm()`) and stop on `close()`; a runtime is also a context manager. A
site runtime should keep this constructor signature so a dispatcher can build any runtime
the same way. `run` may be called from several threads at once.

Runs
----
`run(invocation)` never raises for anything the script does: the outcome is a
:class:`RunResult` with status `ok`, `error` (exception, `die`, non-zero `exit`), `timeout`
(stopped after `invocation.timeout` seconds) or `crashed` (the worker process died). It raises
:class:`NoSupervisor` if no supervisor is bound: that is the embedder's mistake, not the
script's. Output (stdout and stderr interleaved) is capped at `output_cap` bytes; the rest is
counted in `output_dropped`, never buffered, so a flooding script cannot block or bloat the
host. Each run appends a header line and its output to `invocation.log_path` (the job's
`<logdir>/<jobid>.cb`), as the original does, rotated at `log_cap` bytes (see `logs`).

Working directory and environment
---------------------------------
Scripts run in `settings.workdir`, or when it is None in the host's working directory at the
time of the runtime's first run: the original runs callbacks inside the supervisor process, so
relative paths in existing scripts (`open('submitted.log', 'a')`) resolve against the
supervisor's directory. Workers go back to that directory before every run. In-process Python
cannot change directory per run (it is process-wide), so it refuses a `workdir` other than the
host's. Worker processes get a minimal, explicit environment (:func:`child_environment`), no
shell is ever involved, and job data travels only over the workers' pipes.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import AliasChoices, ConfigDict, Field, field_validator

from ..errors import Diagnostic, QbCallbacksError
from ..lang.source import file_kind_name
from ..model._base import Frozen
from ..model.events import Event
from ..model.languages import JobCallbackLanguage, runtime_extension
from ..model.statuses import OutcomeStatus
from ..model.supervisor import Supervisor
from .logs import DEFAULT_LOG_BACKUPS, DEFAULT_LOG_CAP, append_log
from .registry import ENTRY_POINT_GROUP, RuntimeNotFound, runtime_classes, runtime_for

__all__ = ["ENTRY_POINT_GROUP", "RuntimeNotFound", "append_log", "runtime_classes",
           "runtime_for"]
PythonMode = Literal["isolated", "in-process"]

log = logging.getLogger("qbcallbacks.runtimes")

#: Variables handed on to worker processes when `settings.env` is None (if the host has them).
PASSED_ENV = ("HOME", "USER", "LOGNAME", "TZ", "QBDIR", "TMPDIR")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class Invocation(Frozen):
    """One run of one callback for one job, as decided by the matcher."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: File name of a universal callback, or `job:<id>#<index>` for a job-specific one.
    callback: str
    #: The script file, or None for inline code.
    path: Path | None = None
    #: Inline code (job-specific callbacks); None when `path` is given.
    code: str | None = None
    #: The job the callback instance is attached to (what `qb.jobid()` returns).
    job_id: int
    #: The event that fired the callback.
    event: Event
    #: Seconds before the run is stopped and reported as a timeout.
    timeout: float = 30.0
    #: Where the run's output is appended (`<logdir>/<jobid>.cb`), if anywhere.
    log_path: Path | None = None

    @property
    def work_name(self) -> str | None:
        """The triggering work item's name (`qb.workid()`), for work events."""
        return self.event.extra if self.event.type == "work" else None

    @property
    def subjob_id(self) -> int:
        """The triggering subjob's id (`qb.subid()`), or -1."""
        extra = self.event.extra
        if self.event.type == "subjob" and extra is not None and extra.isdigit():
            return int(extra)
        return -1

    @property
    def source_name(self) -> str:
        """How tracebacks and logs name the code: the path, or the callback name."""
        return str(self.path) if self.path is not None else self.callback


class RunResult(Frozen):
    """What happened in one run; a failing callback is a result, never an exception.

    A runtime answers `ok`, `error`, `timeout` or `crashed`; the dispatcher uses the same
    record for a firing that did not run (`cancelled`, `lost`, `refused`), so every firing
    ends with one of these whatever became of it."""

    status: OutcomeStatus
    exit_code: int | None = None
    output: str = ""
    error: str | None = None
    duration: float = 0.0
    #: Bytes of output beyond `output_cap`, counted and thrown away.
    output_dropped: int = 0
    #: When the run started (wall clock); set by whoever started it, None if it never did.
    started_at: float | None = None


class RuntimeSettings(Frozen):
    """Options shared by every runtime; each uses the ones that concern it."""

    #: Python only: `isolated` (worker processes) or `in-process` (trusted sites).
    mode: PythonMode = "isolated"
    #: Directory scripts run in; None is the host's working directory (see the module doc).
    workdir: Path | None = None
    #: Environment for worker processes; None builds the minimal default.
    env: tuple[tuple[str, str], ...] | None = None
    #: Most warm workers kept per runtime (runs beyond that wait for a free one).
    pool_size: int = Field(default=2, ge=1, le=64)
    #: Bytes of output kept per run.
    output_cap: int = Field(default=64 * 1024, ge=0)
    #: A worker is replaced after this many runs even when every run left it clean, as
    #: pre-fork servers do (`recycle_after` is the older name).
    max_runs_per_worker: int = Field(default=1000, ge=1, validation_alias=AliasChoices(
        "max_runs_per_worker", "recycle_after"))
    #: Size cap of one job's `.cb` log before it is rotated, and rotated files kept.
    log_cap: int = Field(default=DEFAULT_LOG_CAP, ge=1024)
    log_backups: int = Field(default=DEFAULT_LOG_BACKUPS, ge=0, le=20)
    #: Interpreters; None is this Python (`sys.executable`) and the `perl` on PATH.
    python: str | None = None
    perl: str | None = None

    @field_validator("env", mode="before")
    @classmethod
    def _env_items(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return tuple(sorted((str(k), str(v)) for k, v in value.items()))
        return value


class NoSupervisor(QbCallbacksError):
    """`run` was called on a runtime that has no supervisor to answer its calls."""


class RuntimeConfigError(QbCallbacksError):
    """Runtime settings that cannot work together (e.g. a workdir for in-process Python)."""


class Runtime(ABC):
    """A callback language. Instances may keep warm workers; `close` releases them."""

    def __init__(self, supervisor: Supervisor | None = None,
                 settings: RuntimeSettings | None = None, **overrides: Any) -> None:
        base = settings if settings is not None else RuntimeSettings()
        if "recycle_after" in overrides:  # the older name of max_runs_per_worker
            overrides["max_runs_per_worker"] = overrides.pop("recycle_after")
        if overrides:
            base = RuntimeSettings.model_validate({**base.model_dump(), **overrides})
        self.settings: RuntimeSettings = base
        self.supervisor: Supervisor | None = supervisor

    def bind(self, supervisor: Supervisor) -> None:
        """Give the runtime the supervisor that answers `qb` calls and qcb commands."""
        self.supervisor = supervisor

    def require_supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise NoSupervisor(f"{type(self).__name__} has no supervisor; pass one to the "
                               "constructor or call bind(supervisor) before run()")
        return self.supervisor

    @abstractmethod
    def validate(self, path: Path) -> list[Diagnostic]:
        """Check a script without running it; problems come back as diagnostics."""

    @abstractmethod
    def run(self, invocation: Invocation) -> RunResult:
        """Run one callback to completion or timeout; never raises for the script's faults."""

    def warm(self) -> None:  # noqa: B027 - optional hook, runtimes without workers do nothing
        """Start workers ahead of the first run (optional)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes hold nothing
        """Release workers and other resources."""

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child_environment(settings: RuntimeSettings) -> dict[str, str]:
    """The whole environment of a worker process: explicit, small, never job data."""
    if settings.env is not None:
        return dict(settings.env)
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update(PATH=DEFAULT_PATH, LANG="C.UTF-8", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    return env


def workdir_of(settings: RuntimeSettings) -> str:
    return str(settings.workdir) if settings.workdir is not None else os.getcwd()


def keep_output(data: bytes, cap: int) -> tuple[str, int]:
    """The first `cap` bytes as text (a cut character is replaced), and how many were cut."""
    return data[:cap].decode("utf-8", "replace"), max(0, len(data) - cap)


def finish(invocation: Invocation, result: RunResult,
           settings: RuntimeSettings | None = None) -> RunResult:
    """Log the run and hand the result back (every runtime ends a run with this)."""
    if settings is None:
        append_log(invocation, result)
    else:
        append_log(invocation, result, cap=settings.log_cap, backups=settings.log_backups)
    return result


def python_executable(settings: RuntimeSettings) -> str:
    return settings.python or sys.executable


def language_extension(language: JobCallbackLanguage) -> str:
    """The runtime extension for a job-specific callback's language (`mail` runs as qcb)."""
    return runtime_extension(language)


def inline_code(language: JobCallbackLanguage, code: str) -> str:
    """The code to run for a job-specific callback: `mail` is the `mail-status` command."""
    return "mail-status\n" if language == "mail" else code


def open_script(path: str) -> BinaryIO:
    """A script opened for reading at run time, without blocking: a FIFO or device put where
    the script was (after it was loaded) is refused with an OSError instead of hanging a lane."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{path} is {file_kind_name(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
