"""A host process killed at a chosen point: the scenario of every crash test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_until_marker(script: str, marker: Path) -> int:
    """Run `script` in a new interpreter until it writes `marker`, then SIGKILL it; its
    return code (a script that ends on its own first fails the test with its stderr)."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode() if proc.stderr else "host exited")
            assert time.monotonic() < deadline, "the host never got there"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()
    return proc.returncode
