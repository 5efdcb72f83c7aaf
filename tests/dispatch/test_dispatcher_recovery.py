"""A host killed with SIGKILL mid-run: the next start re-runs or reports every pending firing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir

HOST = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.dispatch_fakes import RecordingRuntime, runtimes
    from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
    from qbcallbacks.model.events import Event
    from qbcallbacks.reference.memory import MemorySupervisor

    class Hang(RecordingRuntime):
        def run(self, invocation):
            if invocation.job_id == 1:
                return super().run(invocation)
            Path({marker!r}).write_text("started")
            time.sleep(60)

    d = Dispatcher([{root!r}], MemorySupervisor(), runtimes=runtimes(Hang()),
                   audit={audit!r}, settings=DispatcherSettings(max_runs=1))
    d.emit(Event(name="complete", type="job", job=1))
    d.wait_idle(10)
    for job in (2, 3, 4):
        d.emit(Event(name="complete", type="job", job=job))
    time.sleep(60)
""")


def count_pending(audit) -> int:
    reader = open_audit(audit, readonly=True)
    try:
        return len(reader.query(status="pending"))
    finally:
        reader.close()


def crash_host(tmp_path, backend):
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self", "b.qcb": "done-job-self"})
    marker = tmp_path / "started"
    audit = backend.location()
    tests = os.path.dirname(os.path.dirname(__file__))
    script = HOST.format(tests=tests, marker=str(marker), root=str(root), audit=str(audit))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode() if proc.stderr else "host exited")
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Kill once the matcher has committed every pending firing (2 callbacks x 3 jobs).
        while count_pending(audit) < 6:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return root, audit


def test_killed_host_restarts_and_completes_pending_firings(tmp_path, backend):
    root, audit = crash_host(tmp_path, backend)
    store = open_audit(audit)
    before = store.query()
    store.close()
    pending = [r for r in before if r.status == "pending"]
    assert {(r.job, r.callback) for r in pending} == {
        (j, c) for j in (2, 3, 4) for c in ("a.qcb", "b.qcb")}
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), audit=audit)
    with d:
        assert d.wait_idle(10)
        assert {r.id for r in d.recovered} == {r.id for r in pending}
    after = open_audit(audit, readonly=True)
    try:
        rows = after.query()
    finally:
        after.close()
    assert len(rows) == len(before)  # re-run in place: no duplicate rows
    assert all(r.status == "ok" for r in rows)
    # Per job, the recovered firings ran in their original order.
    for job in (2, 3, 4):
        assert [c.callback for c in rt.calls if c.job_id == job] == ["a.qcb", "b.qcb"]


def test_killed_host_reported_when_configured(tmp_path, backend):
    root, audit = crash_host(tmp_path, backend)
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), audit=audit,
                   settings=DispatcherSettings(recovery="report"))
    with d:
        assert d.wait_idle(10)
        assert len(d.recovered) == 6
    reader = open_audit(audit, readonly=True)
    rows = reader.query()
    reader.close()
    assert sorted({r.status for r in rows}) == ["lost", "ok"]
    assert all("not run again" in (r.error or "") for r in rows if r.status == "lost")
    assert rt.calls == []
