"""FIFOs where `check`, the loader or a runtime expect a file: a clear error at once, never a
read that waits for a writer that will not come (each subprocess has a generous deadline that
only a hang reaches)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qbcallbacks.runtimes.api import open_script
from qbcallbacks.runtimes.validate import validators


def check(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qbcallbacks", "check", "--format", "json",
                           *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=cwd)


def test_a_fifo_callbacks_conf_is_an_error_and_no_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "callbacks.conf")
    done = check(str(tmp_path))
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    assert [d["code"] for d in found] == ["QCB012"]
    assert "is a FIFO, not a regular file" in found[0]["message"]
    assert "Traceback" not in done.stderr


def test_a_fifo_callbacks_conf_with_a_noqa_lookup_does_not_hang(tmp_path: Path) -> None:
    """The noqa filter looks for the line of each finding in its file: never in a FIFO."""
    os.mkfifo(tmp_path / "callbacks.conf")
    done = check(str(tmp_path / "callbacks.conf"))
    assert done.returncode == 1
    assert [d["code"] for d in json.loads(done.stdout)] == ["QCB012"]


@pytest.mark.parametrize("name", ["a.py", "b.pl", "c.qcb"])
def test_a_fifo_script_given_by_name_is_an_error(tmp_path: Path, name: str) -> None:
    os.mkfifo(tmp_path / name)
    (tmp_path / "callbacks.conf").write_text(f"{name} = complete-job-self\n")
    done = check(name, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert [d["code"] for d in json.loads(done.stdout)] == ["QCB012"]


@pytest.mark.parametrize("compile_perl", [False, True])
def test_validators_refuse_fifos_without_opening_them(tmp_path: Path,
                                                      compile_perl: bool) -> None:
    for ext, validate in validators(compile_perl=compile_perl).items():
        fifo = tmp_path / f"script{ext}"
        os.mkfifo(fifo)
        found = validate(fifo)
        assert [d.code for d in found] == ["QCB012"], ext


def test_a_script_replaced_by_a_fifo_is_refused_at_run_time(tmp_path: Path) -> None:
    fifo = tmp_path / "late.py"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="is a FIFO, not a regular file"):
        open_script(str(fifo))
    plain = tmp_path / "plain.py"
    plain.write_bytes(b"pass\n")
    with open_script(str(plain)) as fh:
        assert fh.read() == b"pass\n"
