"""The one small interface every callback language implements, and how runtimes are found.

A runtime is registered under a file extension (without the dot) in the entry-point group
`qbcallbacks.runtimes`; a site adds a language from its own package by declaring one more entry
point, without touching ours.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict

from ..engine._base import Frozen
from ..engine.events import Event
from ..errors import Diagnostic, QbCallbacksError

ENTRY_POINT_GROUP = "qbcallbacks.runtimes"
RunStatus = Literal["ok", "error", "timeout", "crashed"]


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


class RunResult(Frozen):
    """What happened in one run; a failing callback is a result, never an exception."""

    status: RunStatus
    exit_code: int | None = None
    output: str = ""
    error: str | None = None
    duration: float = 0.0


class RuntimeNotFound(QbCallbacksError):
    """No runtime is registered for an extension."""


class Runtime(ABC):
    """A callback language. Instances may keep warm workers; `close` releases them."""

    #: Extensions (without the dot) this runtime serves.
    extensions: tuple[str, ...] = ()

    @abstractmethod
    def validate(self, path: Path) -> list[Diagnostic]:
        """Check a script without running it; problems come back as diagnostics."""

    @abstractmethod
    def run(self, invocation: Invocation) -> RunResult:
        """Run one callback to completion or timeout; never raises for the script's faults."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes hold nothing
        """Release workers and other resources."""


def runtime_classes() -> dict[str, type[Runtime]]:
    """Every registered runtime class by extension, ours and any site's."""
    found: dict[str, type[Runtime]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, Runtime):
            found[ep.name.lower().lstrip(".")] = cls
    return found


def runtime_for(extension: str) -> type[Runtime]:
    """The runtime class registered for `extension` (with or without the dot)."""
    ext = extension.lower().lstrip(".")
    classes = runtime_classes()
    if ext not in classes:
        raise RuntimeNotFound(f"no runtime is registered for '.{ext}' files; known: "
                              + ", ".join(f".{e}" for e in sorted(classes)))
    return classes[ext]
