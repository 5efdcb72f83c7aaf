"""Warm Python workers start every callback from a clean slate, or are replaced.

Each case runs a callback that leaves something behind, then a second, innocent callback (for
another job) in the same one-worker pool, and checks what the second one sees.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.python import PythonRuntime


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=100)


@pytest.fixture
def rt(sup: MemorySupervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    runtime = PythonRuntime(sup, pool_size=1)
    yield runtime
    runtime.close()


def invoke(rt: PythonRuntime, code: str, job: int, *, timeout: float = 10.0) -> RunResult:
    return rt.run(Invocation(callback="inline.py", code=textwrap.dedent(code), job_id=job,
                             event=Event(name="submit", type="job", job=job), timeout=timeout))


LEAKS = {
    "qb function replaced": (
        "qb.jobid = lambda: 424242",
        "print(qb.jobid())", "{job}\n"),
    "qb imported and patched": (
        "import qb as q\nq.event = lambda: 'forged'",
        "import qb as q\nprint(q.event())", "submit-job-{job}\n"),
    "environment": (
        "import os\nos.environ['LD_PRELOAD'] = '/tmp/evil.so'\nos.environ.pop('PATH', None)",
        "import os\nprint('LD_PRELOAD' in os.environ, 'PATH' in os.environ)", "False True\n"),
    "builtins": (
        "import builtins\nbuiltins.print = lambda *a, **k: None\nbuiltins.planted = 1",
        "import builtins\nprint(hasattr(builtins, 'planted'))", "False\n"),
    "monkeypatched standard module": (
        "import json, os\njson.dumps = lambda *a, **k: 'forged'\nos.environ = {}\n"
        "os.getcwd = lambda: '/forged'",
        "import json, os\nprint(json.dumps([1]), os.getcwd() != '/forged', 'PATH' in os.environ)",
        "[1] True True\n"),
    "sys.path": (
        "import sys\nsys.path.insert(0, '/tmp/evil')",
        "import sys\nprint('/tmp/evil' in sys.path)", "False\n"),
    "sys.modules addition": (
        "import sys, types\nsys.modules['planted_mod'] = types.ModuleType('planted_mod')",
        "import sys\nprint('planted_mod' in sys.modules)", "False\n"),
    "umask": (
        "import os\nos.umask(0)",
        "import os\nm = os.umask(0o22)\nos.umask(m)\nprint(oct(m))", "0o22\n"),
    "working directory": (
        "import os\nos.chdir('/')",
        "import os\nprint(os.getcwd() != '/')", "True\n"),
    "replaced sys.stdout": (
        "import sys, io\nsys.stdout = io.StringIO()\nsys.stderr = sys.stdout",
        "import sys\nprint('seen')\nprint('err', file=sys.stderr)", "seen\nerr\n"),
    "descriptor 1 reopened": (
        "import os\nos.close(1)\nfd = os.open('captured.txt', os.O_WRONLY | os.O_CREAT)",
        "import os\nprint('seen', flush=True)\nos.write(1, b'raw\\n')", "seen\nraw\n"),
    "signal handler": (
        "import signal\nsignal.signal(signal.SIGTERM, lambda *a: None)",
        "import signal\nprint(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)", "True\n"),
    "blocked signals": (
        "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})",
        "import signal\nprint(signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, ()))",
        "False\n"),
    "resource limit": (
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (16, hard))",
        "import resource\nprint(resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 16)", "True\n"),
    "pending alarm": (
        "import signal\nsignal.alarm(1)",
        "import time\ntime.sleep(1.5)\nprint('alive')", "alive\n"),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_the_next_callback_sees_a_clean_world(rt: PythonRuntime, sup: MemorySupervisor,
                                              leak: str) -> None:
    first, second = sup.submit("first"), sup.submit("second")
    dirty, probe, expected = LEAKS[leak]
    assert invoke(rt, dirty, first.id).status == "ok"
    result = invoke(rt, probe, second.id)
    assert (result.status, result.output) == ("ok", expected.format(job=second.id))
    assert not Path("captured.txt").exists() or Path("captured.txt").read_bytes() == b""


def _pid(rt: PythonRuntime, job: int) -> int:
    return int(invoke(rt, "import os\nprint(os.getpid())", job).output)


@pytest.mark.parametrize("dirty", [
    # a thread still running when the callback returns: its output would land in the next run
    "import threading, time, sys\n"
    "def chatter():\n    while True:\n        print('leak', flush=True)\n        time.sleep(0.01)\n"
    "threading.Thread(target=chatter, daemon=True).start()",
    # a descriptor left open: the worker is replaced rather than leaking it to the next run
    "import os\nos.open('/dev/null', os.O_RDONLY)",
    # a lower hard limit or a nicer priority cannot be undone without root
    "import os\nos.nice(5)",
    # a user change cannot be undone
    "import os\nif os.geteuid() == 0:\n    os.setegid(65534)\nelse:\n    os.open('/', 0)",
])
def test_a_worker_that_cannot_be_cleaned_is_replaced(rt: PythonRuntime, sup: MemorySupervisor,
                                                     dirty: str) -> None:
    job = sup.submit("j")
    before = _pid(rt, job.id)
    assert invoke(rt, dirty, job.id).status == "ok"
    result = invoke(rt, "import os\nprint(os.getpid())", job.id)
    assert result.status == "ok" and "leak" not in result.output
    assert int(result.output) != before


def test_a_clean_run_keeps_its_worker(rt: PythonRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    pids = {_pid(rt, job.id) for _ in range(3)}
    assert len(pids) == 1


def test_max_runs_per_worker_replaces_workers_anyway(sup: MemorySupervisor, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    job = sup.submit("j")
    with PythonRuntime(sup, pool_size=1, max_runs_per_worker=2) as rt:
        pids = [_pid(rt, job.id) for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_qb_arguments_are_bounded_with_a_clear_error(rt: PythonRuntime,
                                                     sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(rt, """
        try:
            qb.jobinfo(*(['-pgrp', 1] * 700000))
        except qb.QbError as exc:
            print(exc)
        try:
            qb.mail('a@example.com', 's', 'x' * 10_000_000)
        except qb.QbError as exc:
            print(exc)
    """, job.id, timeout=2.0)
    assert result.status == "ok"
    lines = result.output.splitlines()
    assert lines[0] == "jobinfo: 1400000 arguments, over the limit of 256 [QCB016]"
    assert lines[1] == ("mail: argument 3 has size 10000000, over the limit of 65536 "
                        "[QCB017]")


class SlowSupervisor(MemorySupervisor):
    def jobinfo(self, *args: object) -> list[dict[str, object]]:
        import time
        time.sleep(1.5)
        return []


def test_the_deadline_covers_time_spent_answering_qb_calls(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    sup = SlowSupervisor()
    job = sup.submit("j")
    with PythonRuntime(sup, pool_size=1) as rt:
        result = invoke(rt, "qb.jobinfo('-id', qb.jobid())\nprint('after')", job.id,
                        timeout=1.0)
        assert result.status == "timeout" and "after" not in result.output
        assert invoke(rt, "print(qb.jobid())", job.id).output == f"{job.id}\n"


def test_host_refuses_oversized_calls_even_from_a_forged_worker(sup: MemorySupervisor) -> None:
    from qbcallbacks.model.supervisor import HostError
    from qbcallbacks.runtimes.qb.answers import answer
    with pytest.raises(HostError, match=r"QCB016"):
        answer(sup, "jobinfo", ["-pgrp", 1] * 1000)
    with pytest.raises(HostError, match=r"argument 3 has size 1000000, .* \[QCB017\]"):
        answer(sup, "mail", ["a@example.com", "s", "x" * 1_000_000])
    assert os.getpid() > 0
