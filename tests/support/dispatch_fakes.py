"""Fakes shared by the dispatcher tests: a recording runtime and a callback directory."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from qbcallbacks.errors import Diagnostic
from qbcallbacks.runtimes.api import Invocation, RunResult, Runtime


class RecordingRuntime(Runtime):
    """Runs nothing: records invocations; can be held, or made slow or failing by name."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.calls: list[Invocation] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.hold.set()
        self.started = threading.Event()
        self.delay = delay
        self.running = 0
        self.max_running = 0

    def validate(self, path: Path) -> list[Diagnostic]:
        return []

    def run(self, invocation: Invocation) -> RunResult:
        with self.lock:
            self.calls.append(invocation)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            self.hold.wait(10)
            if self.delay:
                time.sleep(self.delay)
            if invocation.callback.startswith("fail"):
                return RunResult(status="error", exit_code=2, output="boom\n", error="failed")
            return RunResult(status="ok", exit_code=0, output=f"ran {invocation.callback}\n")
        finally:
            with self.lock:
                self.running -= 1


def write_dir(root: Path, lines: dict[str, str], conf_extra: str = "") -> Path:
    """A callback directory with one qcb script per name and a callbacks.conf of `lines`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in lines:
        script = root / name
        if not script.exists():
            script.write_text("unblock-self\n")
            script.chmod(0o644)
    conf = "".join(f"{name} = {trigger}\n" for name, trigger in lines.items()) + conf_extra
    (root / "callbacks.conf").write_text(conf)
    (root / "callbacks.conf").chmod(0o644)
    return root


def runtimes(rt: RecordingRuntime) -> dict[str, Runtime]:
    return {"qcb": rt, "py": rt, "pl": rt}


def recover(root: Path, audit: object) -> tuple[list[Any], list[Invocation]]:
    """Start a dispatcher on the trail a killed host left, with no new emit: the trail's rows
    and the runs once it is idle (it must see the previous run died)."""
    from qbcallbacks.dispatch.dispatcher import Dispatcher
    from qbcallbacks.reference.memory import MemorySupervisor

    rt = RecordingRuntime()
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                    audit=audit) as d:  # type: ignore[arg-type]  # a path or a URL
        assert d.previous_run_died
        assert d.wait_idle(60)
        rows = list(d.audit.query())
    return rows, rt.calls
