"""Python callbacks in both modes: original scripts unchanged, every way a script can fail."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult, RuntimeConfigError
from qbcallbacks.runtimes.python import PythonRuntime
from support.paths import EXAMPLES, ORIGINAL


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=100)


@pytest.fixture(params=["isolated", "in-process"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # In-process scripts use the host's directory; isolated ones the runtime's (the same here).
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.chdir(run)
    return run


@pytest.fixture
def runtime(sup: MemorySupervisor, mode: str, workdir: Path):
    rt = PythonRuntime(sup, mode=mode)  # type: ignore[arg-type]
    yield rt
    rt.close()


def invoke(rt: PythonRuntime, code: str, job: int, *, timeout: float = 10.0,
           event: Event | None = None, log: Path | None = None) -> RunResult:
    event = event or Event(name="submit", type="job", job=job)
    return rt.run(Invocation(callback="inline.py", code=textwrap.dedent(code), job_id=job,
                             event=event, timeout=timeout, log_path=log))


def run_file(rt: PythonRuntime, path: Path, job: int, **kw: object) -> RunResult:
    event = Event(name="submit", type="job", job=job)
    return rt.run(Invocation(callback=path.name, path=path, job_id=job, event=event, **kw))


def test_seed_submitted_py_runs_unchanged(runtime: PythonRuntime, sup: MemorySupervisor,
                                          workdir: Path, tmp_path: Path) -> None:
    job = sup.submit("shot_010_comp")
    script = tmp_path / "submitted.py"
    shutil.copy(EXAMPLES / "submitted.py", script)
    log = tmp_path / "logs" / f"{job.id}.cb"
    result = run_file(runtime, script, job.id, log_path=log)
    assert result.status == "ok", result
    assert result.exit_code == 0
    assert (workdir / "submitted.log").read_text() == f"submitted {job.id}: shot_010_comp\n"
    assert f"submitted.py on submit-job-{job.id}: ok" in log.read_text()
    # A second job appends, as the original's 'a' mode does.
    other = sup.submit("other")
    assert run_file(runtime, script, other.id).status == "ok"
    last = (workdir / "submitted.log").read_text().splitlines()[-1]
    assert last == f"submitted {other.id}: other"


def test_example_log_failures_to_db_runs_unchanged(runtime: PythonRuntime,
                                                  sup: MemorySupervisor, workdir: Path) -> None:
    import sqlite3

    job = sup.submit("shot_050", label="fx", status="failed")
    event = Event(name="failed", type="job", job=job.id)
    result = runtime.run(Invocation(callback="logFailuresToDB.py",
                                    path=EXAMPLES / "logFailuresToDB.py", job_id=job.id,
                                    event=event, timeout=10))
    assert result.status == "ok", result
    db = sqlite3.connect(workdir / "failures.db")
    try:
        rows = db.execute("SELECT jobid, name, label, pgrp FROM failures").fetchall()
    finally:
        db.close()
    assert rows == [(job.id, "shot_050", "fx", job.id)]


def test_success_sees_its_own_job_through_both_qb_spellings(runtime: PythonRuntime,
                                                            sup: MemorySupervisor) -> None:
    render = sup.submit("render", label="render", work=["1", "2"])
    comp = sup.submit("comp", label="comp", pgrp=render.id, work={"1": "blocked"})
    result = invoke(runtime, """
        import qb as imported
        assert imported.jobid() == qb.jobid()
        me = qb.jobinfo("-id", qb.jobid())[0]
        group = qb.jobinfo("-pgrp", me["pgrp"])
        print(sorted(j["label"] for j in group), qb.workid(), qb.subid(), qb.event())
        print(qb.workunblock("%d:1" % qb.jobid()), qb.unblock(qb.jobid()))
    """, comp.id, event=Event(name="complete", type="work", job=render.id, extra="1"))
    assert result.status == "ok", result
    assert result.output.splitlines() == [
        f"['comp', 'render'] 1 -1 complete-work-{render.id}-1", "True False"]
    assert sup.work_status(comp.id, "1") == "pending"


def test_job_work_subjob_actions_and_mail(runtime: PythonRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j", status="running", work=["a"], subjobs=2)
    victim = sup.submit("victim")
    result = invoke(runtime, f"""
        print(qb.suspend(qb.jobid()), qb.resume(str(qb.jobid())))
        print(qb.kill("{job.id}.1"), qb.workfail("{job.id}:a"), qb.workretry("{job.id}:a"))
        print(qb.remove({victim.id}), qb.jobinfo("-id", {victim.id}))
        qb.mail("ops@example.com", "hello", "body")
        try:
            qb.mail("ops@example.com", "two\\nlines", "")
        except qb.QbError as exc:
            print("refused:", exc)
    """, job.id)
    assert result.status == "ok", result
    lines = result.output.splitlines()
    assert lines[:3] == ["True True", "True True True", "True []"]
    assert lines[3].startswith("refused: mail refused")
    assert sup.subjob_status(job.id, 1) == "killed"
    assert sup.work_status(job.id, "a") == "pending"
    assert [m.subject for m in sup.mails] == ["hello"]


def test_bad_qb_arguments_raise_inside_the_script(runtime: PythonRuntime,
                                                  sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(runtime, 'qb.jobinfo("-frob", 1)', job.id)
    assert result.status == "error"
    assert "QbError" in (result.error or "") and "unknown option '-frob'" in (result.error or "")
    assert invoke(runtime, "qb.workunblock('nocolon')", job.id).status == "error"


def test_exception_is_an_error_result_with_the_scripts_traceback(
        runtime: PythonRuntime, sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(runtime, "print('before')\n1/0\n", job.id)
    assert result.status == "error" and result.exit_code == 1
    assert result.output == "before\n"
    assert "ZeroDivisionError" in (result.error or "")
    assert 'File "inline.py", line 2' in (result.error or "")
    assert "_worker_main" not in (result.error or "") and "_inprocess" not in (result.error or "")
    assert invoke(runtime, "print('next')", job.id).output == "next\n"


@pytest.mark.parametrize(("code", "status", "exit_code"), [
    ("import sys; sys.exit()", "ok", 0),
    ("import sys; sys.exit(0)", "ok", 0),
    ("import sys; sys.exit(3)", "error", 3),
    ("import sys; sys.exit('giving up')", "error", 1),
    ("exit(4)", "error", 4),
    ("raise SystemExit(5)", "error", 5),
])
def test_exit_ends_the_callback_never_the_host(runtime: PythonRuntime, sup: MemorySupervisor,
                                               code: str, status: str, exit_code: int) -> None:
    job = sup.submit("j")
    result = invoke(runtime, code + "\nprint('not reached')", job.id)
    assert (result.status, result.exit_code) == (status, exit_code)
    assert "not reached" not in result.output
    assert invoke(runtime, "print('alive')", job.id).output == "alive\n"


def test_hang_is_a_timeout_and_the_next_callback_runs(runtime: PythonRuntime,
                                                      sup: MemorySupervisor) -> None:
    # How soon after the deadline the run ends is measured by bench/latency.py.
    job = sup.submit("j")
    result = invoke(runtime, "print('spinning')\nwhile True:\n    pass\n", job.id, timeout=0.5)
    assert result.status == "timeout"
    assert "longer than 0.5s" in (result.error or "")
    assert invoke(runtime, "print(qb.jobid())", job.id).output == f"{job.id}\n"
    if runtime.settings.mode == "in-process":
        # The pure-Python loop was interrupted, so no thread is left spinning.
        deadline = time.monotonic() + 5
        while runtime.stuck_threads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runtime.stuck_threads == 0


def test_flood_is_capped_and_counted(sup: MemorySupervisor, mode: str, workdir: Path) -> None:
    job = sup.submit("j")
    with PythonRuntime(sup, mode=mode, output_cap=1000) as rt:  # type: ignore[arg-type]
        result = invoke(rt, """
            import sys
            for i in range(20000):
                print("x" * 99)
            sys.stderr.write("tail\\n")
        """, job.id)
        assert result.status == "ok"
        assert len(result.output.encode()) == 1000
        assert result.output_dropped == 20000 * 100 + 5 - 1000
        assert invoke(rt, "print('small')", job.id).output == "small\n"


def test_concurrent_callbacks_never_see_each_others_job(sup: MemorySupervisor, mode: str,
                                                        workdir: Path) -> None:
    jobs = [sup.submit(f"job{i}") for i in range(6)]
    results: dict[int, RunResult] = {}
    with PythonRuntime(sup, mode=mode, pool_size=3) as rt:  # type: ignore[arg-type]
        def one(job_id: int) -> None:
            results[job_id] = invoke(rt, """
                import time
                first = qb.jobid()
                time.sleep(0.05)
                print(first, qb.jobid(), qb.jobinfo("-id", qb.jobid())[0]["name"])
            """, job_id)

        threads = [threading.Thread(target=one, args=(j.id,)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for job in jobs:
        assert results[job.id].output == f"{job.id} {job.id} {job.name}\n"


def test_callback_log_gets_header_output_and_error(runtime: PythonRuntime,
                                                   sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j")
    log = tmp_path / "logdir" / f"{job.id}.cb"
    invoke(runtime, "print('one')", job.id, log=log)
    invoke(runtime, "raise ValueError('two')", job.id, log=log)
    text = log.read_text()
    assert text.count("--- ") == 2
    assert "one\n" in text and "ValueError: two" in text
    assert f"inline.py on submit-job-{job.id}: error, exit 1" in text


def test_changed_script_is_recompiled(runtime: PythonRuntime, sup: MemorySupervisor,
                                      tmp_path: Path) -> None:
    job = sup.submit("j")
    script = tmp_path / "cb.py"
    script.write_text("print('v1')\n")
    assert run_file(runtime, script, job.id).output == "v1\n"
    script.write_text("print('v2!')\n")
    os.utime(script, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run_file(runtime, script, job.id).output == "v2!\n"
    script.unlink()
    gone = run_file(runtime, script, job.id)
    assert gone.status == "error" and "cannot read the script" in (gone.error or "")


def test_threads_a_callback_leaves_behind_cannot_use_qb(sup: MemorySupervisor,
                                                        workdir: Path) -> None:
    # In-process only: an isolated worker left with a thread is replaced (see test_isolation).
    runtime = PythonRuntime(sup, mode="in-process")
    job = sup.submit("j")
    import builtins
    # The thread tries qb only once the run has ended, and says when it has.
    builtins._qb_run_over = threading.Event()  # type: ignore[attr-defined]
    builtins._qb_probed = threading.Event()  # type: ignore[attr-defined]
    started = invoke(runtime, """
        import builtins, threading
        def later():
            builtins._qb_run_over.wait(30)
            try:
                qb.jobid()
                builtins._qb_probe = "usable"
            except qb.QbError as exc:
                builtins._qb_probe = str(exc)
            builtins._qb_probed.set()
        threading.Thread(target=later).start()
    """, job.id)
    assert started.status == "ok"
    builtins._qb_run_over.set()  # type: ignore[attr-defined]
    assert builtins._qb_probed.wait(30)  # type: ignore[attr-defined]
    result = invoke(runtime, "import builtins; print(builtins._qb_probe)", job.id)
    runtime.close()
    del builtins._qb_probe, builtins._qb_run_over, builtins._qb_probed
    assert result.output.startswith("qb is only usable while a callback runs")


# -- isolated only --------------------------------------------------------------------------

@pytest.fixture
def isolated(sup: MemorySupervisor, workdir: Path):
    rt = PythonRuntime(sup, pool_size=1)
    yield rt
    rt.close()


def _worker_pids(rt: PythonRuntime) -> set[int]:
    return set(rt.worker_pids)


@pytest.mark.parametrize(("code", "expected_code", "words"), [
    ("import os\nprint('bye', flush=True)\nos._exit(7)", 7, "exited with code 7"),
    ("import ctypes\nprint('bye')\nctypes.string_at(0)", -11, "SIGSEGV"),
    ("import os, signal\nprint('bye')\nos.kill(os.getpid(), signal.SIGKILL)", -9, "SIGKILL"),
])
def test_crash_costs_one_worker_which_is_replaced(isolated: PythonRuntime, sup: MemorySupervisor,
                                                  code: str, expected_code: int,
                                                  words: str) -> None:
    job = sup.submit("j")
    assert invoke(isolated, "pass", job.id).status == "ok"
    before = _worker_pids(isolated)
    result = invoke(isolated, code, job.id)
    assert result.status == "crashed"
    assert result.exit_code == expected_code
    assert words in (result.error or "") and "replaced" in (result.error or "")
    assert result.output == "bye\n"  # what was printed before the crash is kept
    after = invoke(isolated, "print(qb.jobid())", job.id)
    assert after.status == "ok" and after.output == f"{job.id}\n"
    assert _worker_pids(isolated).isdisjoint(before)


def test_workers_are_retired_after_recycle_after_runs(sup: MemorySupervisor,
                                                     workdir: Path) -> None:
    job = sup.submit("j")
    with PythonRuntime(sup, pool_size=1, recycle_after=2) as rt:
        pids = [invoke(rt, "import os; print(os.getpid())", job.id).output for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_timeout_kills_the_workers_children_too(isolated: PythonRuntime,
                                                sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    result = invoke(isolated, """
        import subprocess
        child = subprocess.Popen(["sleep", "60"])
        print(child.pid, flush=True)
        child.wait()
    """, job.id, timeout=3.0)
    assert result.status == "timeout"
    child = int(result.output.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the hung callback's child survived the timeout")


def test_workers_get_a_minimal_environment_and_the_workdir(sup: MemorySupervisor,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QB_SECRET_TOKEN", "hunter2")
    job = sup.submit("j")
    with PythonRuntime(sup, workdir=tmp_path) as rt:
        result = invoke(rt, """
            import os
            print(os.getcwd())
            print(sorted(os.environ))
            os.chdir("/")
        """, job.id)
        lines = result.output.splitlines()
        assert lines[0] == str(tmp_path)
        assert "QB_SECRET_TOKEN" not in lines[1] and "'PATH'" in lines[1]
        # The next run is back in the workdir even though the last one left it.
        assert invoke(rt, "import os; print(os.getcwd())", job.id).output == f"{tmp_path}\n"


def test_close_leaves_no_process_behind(sup: MemorySupervisor, workdir: Path) -> None:
    job = sup.submit("j")
    rt = PythonRuntime(sup, pool_size=2)
    assert rt.worker_pids == ()  # constructing starts nothing
    rt.warm()
    assert invoke(rt, "pass", job.id).status == "ok"
    pids = rt.worker_pids
    assert len(pids) == 2
    rt.close()
    assert rt.worker_pids == ()
    for pid in pids:  # reaped by close: the process no longer exists
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# -- in-process only -----------------------------------------------------------------------

def test_in_process_refuses_a_workdir(tmp_path: Path) -> None:
    with pytest.raises(RuntimeConfigError):
        PythonRuntime(mode="in-process", workdir=tmp_path / "elsewhere")


def test_in_process_exit_and_output_stay_out_of_the_host(
        sup: MemorySupervisor, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = sup.submit("j")
    with PythonRuntime(sup, mode="in-process") as rt:
        print("host before")
        result = invoke(rt, "import sys\nprint('cb')\nprint('err', file=sys.stderr)\nsys.exit()",
                        job.id)
        print("host after")
    assert result.status == "ok" and result.output == "cb\nerr\n"
    captured = capsys.readouterr()
    assert captured.out == "host before\nhost after\n" and captured.err == ""
    assert "qb" not in sys.modules or sys.modules["qb"].__name__ != "qbcallbacks.runtimes.qb.module"


def test_the_originals_submitted_py_is_kept_as_published_and_runs(
        runtime: PythonRuntime, sup: MemorySupervisor) -> None:
    published = [line.strip() for line in SEED_SUBMITTED.splitlines() if line.strip()]
    shipped = ORIGINAL / "submitted.py"
    assert [line.strip() for line in shipped.read_text().splitlines() if line.strip()] == \
        published
    job = sup.submit(f"original_{os.getpid()}_{time.monotonic_ns()}")
    assert run_file(runtime, shipped, job.id).status == "ok"
    written = Path("/tmp/univeral_callback_test").read_text().splitlines()
    assert f"submitted {job.id}: {job.name}" in written


#: The script as the original documentation prints it (its indentation lost in publishing).
SEED_SUBMITTED = """#!/usr/bin/env python

import sys
import qb
import traceback

fh = open('/tmp/univeral_callback_test', 'a')
try:
# ==================================================
# === NOTE: ===
# the qb.jobinfo() in callbacks is not the
# same as the one in the external python API
# ==================================================
job = qb.jobinfo("-id", qb.jobid())[0]
fh.write('submitted %(id)s: %(name)s\\n' % job)
except:
fh.write(traceback.format_exc())
fh.close()
"""


def test_an_edit_in_place_with_the_same_size_and_mtime_runs_the_new_text(
        runtime: PythonRuntime, sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.py"
    script.write_text("import qb\nqb.suspend(qb.jobid())\n")
    assert run_file(runtime, script, job.id).status == "ok"
    assert sup.job_status(job.id) == "suspended"
    stamp = os.stat(script)
    with open(script, "r+b") as fh:  # same inode and size, and the old mtime put back
        fh.write(b"import qb\nqb.resume (qb.jobid())\n"[:stamp.st_size])
    os.utime(script, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after = os.stat(script)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        stamp.st_size, stamp.st_mtime_ns, stamp.st_ino)
    result = run_file(runtime, script, job.id)
    assert result.status == "ok", result
    assert [a.action for a in sup.actions] == ["suspend", "resume"]


def test_a_script_over_the_size_limit_is_refused_without_running(
        runtime: PythonRuntime, sup: MemorySupervisor, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.py"
    script.write_text("import qb\nqb.suspend(qb.jobid())\n")
    with open(script, "ab") as fh:  # sparse: far past the limit, costly to read or compile
        fh.truncate(5 << 20)
    result = run_file(runtime, script, job.id)
    assert result.status == "error", result
    assert "limit" in (result.error or "") or "too" in (result.error or ""), result.error
    assert sup.actions == []


def test_a_script_replaced_by_a_fifo_is_refused_not_waited_on(
        runtime: PythonRuntime, sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.py"
    script.write_text("import qb\nqb.suspend(qb.jobid())\n")
    assert run_file(runtime, script, job.id).status == "ok"
    script.unlink()
    os.mkfifo(script)  # nobody writes to it: a blocking open or read would wait for good
    results: list[RunResult] = []
    thread = threading.Thread(
        target=lambda: results.append(run_file(runtime, script, job.id, timeout=120.0)),
        daemon=True)
    thread.start()
    thread.join(60)
    assert results, "the run waited on the FIFO"
    assert results[0].status == "error", results[0]
    assert "not a regular file" in (results[0].error or "")
    assert [a.action for a in sup.actions] == ["suspend"]
