"""`qbcallbacks --version` and `qbcallbacks.__version__` give the installed package's version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import qbcallbacks
from qbcallbacks.cli import main

CONSOLE = Path(sys.executable).parent / "qbcallbacks"


def test_the_version_is_the_installed_metadata(capsys: object) -> None:
    assert qbcallbacks.__version__ == version("qbcallbacks")
    assert main(["--version"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out == f"qbcallbacks, version {version('qbcallbacks')}\n"


def test_the_console_script_prints_the_same_as_click_would() -> None:
    fast = subprocess.run([str(CONSOLE), "--version"], capture_output=True, text=True,
                          check=True, timeout=60)
    # `--version` among other arguments goes through click's own option: the same text.
    slow = subprocess.run([str(CONSOLE), "--version", "check"], capture_output=True,
                          text=True, check=False, timeout=60)
    assert fast.stdout == slow.stdout == f"qbcallbacks, version {version('qbcallbacks')}\n"
