"""In-process callbacks get their own streams; what they do to them never reaches the host."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.python import PythonRuntime


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    runtime = PythonRuntime(MemorySupervisor(), mode="in-process")
    yield runtime
    runtime.close()


def invoke(rt: PythonRuntime, code: str) -> RunResult:
    return rt.run(Invocation(callback="inline.py", code=textwrap.dedent(code), job_id=1,
                             event=Event(name="submit", type="job", job=1), timeout=10))


@pytest.mark.parametrize("code", [
    "import sys\nsys.stdout.close()\nsys.stderr.close()",
    "import sys\nsys.stdout.detach()",
    "import sys\nwith sys.stdout as out:\n    print('inside', file=out)",
])
def test_closing_the_callbacks_streams_leaves_the_hosts_open(rt: PythonRuntime,
                                                             code: str) -> None:
    invoke(rt, "pass")  # the first run wraps the host's streams
    host_out = sys.stdout
    invoke(rt, code)
    assert not sys.stdout.closed and not sys.stderr.closed
    assert sys.stdout is host_out
    print("host still writes")
    after = invoke(rt, "print('next')")
    assert (after.status, after.output) == ("ok", "next\n")


def test_a_closed_stream_fails_only_in_its_own_callback(rt: PythonRuntime) -> None:
    result = invoke(rt, "import sys\nsys.stdout.close()\nprint('late')")
    assert result.status == "error" and "closed file" in (result.error or "")


def test_a_replaced_sys_stdout_is_put_back(rt: PythonRuntime) -> None:
    invoke(rt, "pass")
    before = (sys.stdout, sys.stderr)
    assert invoke(rt, "import sys, io\nsys.stdout = io.StringIO()\nsys.stderr = None").status \
        == "ok"
    assert (sys.stdout, sys.stderr) == before
    assert invoke(rt, "print('seen')").output == "seen\n"


def test_closed_descriptors_are_put_back(rt: PythonRuntime, tmp_path: Path) -> None:
    ident = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)]
    result = invoke(rt, f"""
        import os
        os.close(1)
        os.close(2)
        os.open({str(tmp_path / 'stolen')!r}, os.O_WRONLY | os.O_CREAT)
    """)
    assert result.status == "ok"
    assert [(os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)] == ident
