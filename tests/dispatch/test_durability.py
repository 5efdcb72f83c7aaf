"""What an accepted event survives: a killed host, a locked trail, a callback killing the host,
a second writer, a slow reload."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.sqlite import SqliteAuditStore
from qbcallbacks.audit.store import AuditInUse
from qbcallbacks.dispatch import reload as reload_module
from qbcallbacks.dispatch.dispatcher import (
    Dispatcher,
    DispatcherSettings,
    DispatcherUnavailable,
)
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, recover, runtimes, write_dir
from support.hosts import run_until_marker

TESTS = str(Path(__file__).resolve().parent.parent)

QUEUED_HOST = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.dispatch_fakes import RecordingRuntime, runtimes
    from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings, MatcherSource
    from qbcallbacks.model.events import Event
    from qbcallbacks.reference.memory import MemorySupervisor

    class Stuck(MatcherSource):
        def observe(self, event, job):
            threading.Event().wait()  # the matcher never gets past the first event

    d = Dispatcher([{root!r}], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                   matcher=Stuck(), audit={audit!r},
                   settings=DispatcherSettings(queue_size=5000))
    for job in range(1, {n} + 1):
        d.emit(Event(name="complete", type="job", job=job))
    Path({marker!r}).write_text("accepted")
    threading.Event().wait()
""")


def test_killed_host_loses_no_queued_event(tmp_path, backend):
    n = 2000
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    audit, marker = backend.location(), tmp_path / "accepted"
    script = QUEUED_HOST.format(tests=TESTS, root=str(root), audit=str(audit),
                                marker=str(marker), n=n)
    assert run_until_marker(script, marker) == -signal.SIGKILL
    # The same database, no new emit: every accepted event is matched and run.
    rows, calls = recover(root, audit)
    assert sorted(r.job for r in rows) == list(range(1, n + 1))
    assert {r.status for r in rows} == {"ok"}
    assert sorted(c.job_id for c in calls) == list(range(1, n + 1))
    # A second restart finds nothing left to do.
    rt2 = RecordingRuntime()
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt2), audit=audit) as d:
        assert d.wait_idle(10)
        assert not d.previous_run_died
    assert rt2.calls == []


def test_locked_trail_refuses_emit_then_resumes(tmp_path, backend):
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    audit = backend.location()
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), audit=audit,
                   settings=DispatcherSettings(busy_timeout=0.02, retry_max=0.05))
    try:
        d.emit(Event(name="complete", type="job", job=1))
        assert d.wait_idle(10)
        locker = backend.lock_trail(audit)
        accepted = [1]
        refused = None
        deadline = time.monotonic() + 30
        while refused is None:
            assert time.monotonic() < deadline, "emit never reported the locked trail"
            job = len(accepted) + 1
            try:
                d.emit(Event(name="complete", type="job", job=job))
                accepted.append(job)
            except DispatcherUnavailable as exc:
                refused = exc
            time.sleep(0.01)
        assert "audit trail cannot be written" in str(refused)
        assert "lock" in str(refused)  # "database is locked", "lock timeout"
        assert not d.health.ok and "lock" in (d.health.problem or "")
        locker.close()  # its transaction is rolled back, the lock released
        assert d.wait_idle(30)
        assert d.health.ok
        d.emit(Event(name="complete", type="job", job=1000))
        accepted.append(1000)
        assert d.wait_idle(10)
        rows = d.audit.query()
    finally:
        d.close()
    assert sorted(r.job for r in rows) == accepted
    assert {r.status for r in rows} == {"ok"}


def test_second_writer_is_refused_at_open(tmp_path, backend):
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    audit = backend.location()
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                    audit=audit) as d:
        d.emit(Event(name="complete", type="job", job=1))
        with pytest.raises(AuditInUse, match=f"process {os.getpid()}"):
            open_audit(audit)
        with pytest.raises(AuditInUse, match="being written by"):
            Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                       audit=audit)
        reader = open_audit(audit, readonly=True)  # readers are never refused
        reader.close()
        assert d.wait_idle(10)
    # Closed: the next writer gets in, and ids continue.
    store = open_audit(audit)
    store.close()


CRASH_HOST = textwrap.dedent("""
    import sys
    from qbcallbacks.dispatch.dispatcher import Dispatcher
    from qbcallbacks.model.events import Event
    from qbcallbacks.reference.memory import MemorySupervisor

    d = Dispatcher([{root!r}], MemorySupervisor(), mode="in-process", audit={audit!r})
    for arg in sys.argv[1:]:
        name, job = arg.split(":")
        d.emit(Event(name=name, type="job", job=int(job)))
    d.wait_idle(30)
    d.close()
    print("died before" if d.previous_run_died else "clean")
""")


def test_callback_that_kills_the_host_is_lost_after_the_cap(tmp_path, backend):
    root = tmp_path / "cb"
    root.mkdir()
    (root / "boom.py").write_text("import os\nos._exit(3)\n")
    (root / "fine.py").write_text("print('fine')\n")
    (root / "callbacks.conf").write_text("boom.py = complete-job-self\nfine.py = submit-job-self\n")
    for p in root.iterdir():
        p.chmod(0o644)
    audit = backend.location()
    script = CRASH_HOST.format(root=str(root), audit=str(audit))

    def host(*events: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *events], capture_output=True,
                              text=True, timeout=120, check=False)

    assert host("complete:1").returncode == 3  # the callback took the host down
    assert host().returncode == 3  # the one re-run (default cap) does it again
    last = host("submit:2")
    assert last.returncode == 0, last.stderr
    assert last.stdout.strip() == "died before"
    reader = open_audit(audit, readonly=True)
    rows = {r.callback: r for r in reader.query()}
    reader.close()
    assert rows["boom.py"].status == "lost" and rows["boom.py"].attempts == 2
    assert "host died while this callback ran" in (rows["boom.py"].error or "")
    assert rows["fine.py"].status == "ok"
    listing = subprocess.run([sys.executable, "-m", "qbcallbacks", "history", "--audit",
                              str(audit), "--format", "json"], capture_output=True, text=True,
                             timeout=60, check=True)
    assert '"attempts": 2' in listing.stdout and '"lost"' in listing.stdout


def test_slow_reload_keeps_events_flowing(tmp_path, monkeypatch):
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=tmp_path / "audit.db", settings=DispatcherSettings(reload_budget=0.5))
    release = threading.Event()
    real = reload_module.load_directory

    def slow(directory: str):  # a load that hangs, like a blocking compile check
        release.wait(30)
        return real(directory)

    monkeypatch.setattr(reload_module, "load_directory", slow)
    write_dir(root, {"b.qcb": "complete-job-self"})
    found: list = []
    reloading = threading.Thread(target=lambda: found.extend(d.reload()))
    try:
        reloading.start()
        for job in range(1, 51):
            d.emit(Event(name="complete", type="job", job=job))
        assert d.wait_idle(20)  # matched and run while the load hangs
        reloading.join(20)
        assert not reloading.is_alive()
        assert [x.code for x in found] == ["QCB150"]
        assert [r.file for r in d.rules] == ["a.qcb"]  # the last good rules stay
    finally:
        release.set()
        d.close()
    assert len(rt.calls) == 50


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_background_program_survives_a_later_timeout(tmp_path):
    root = tmp_path / "cb"
    root.mkdir()
    pid_file = tmp_path / "child.pid"
    (root / "start.py").write_text(
        "import subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n")
    (root / "hang.py").write_text("import time\ntime.sleep(60)\n")
    (root / "callbacks.conf").write_text(
        "start.py = submit-job-self\nhang.py = complete-job-self\n")
    for p in root.iterdir():
        p.chmod(0o644)
    settings = DispatcherSettings(per_runtime={"py": 1}, max_runs=1,
                                  rule_timeouts={"hang.py": 1.0})
    d = Dispatcher([str(root)], MemorySupervisor(), audit=tmp_path / "audit.db",
                   settings=settings)
    child = 0
    try:
        d.emit(Event(name="submit", type="job", job=1))
        assert d.wait_idle(30)
        child = int(pid_file.read_text())
        d.emit(Event(name="complete", type="job", job=1))  # same worker, then a timeout
        assert d.wait_idle(30)
        statuses = {r.callback: r.status for r in d.audit.query()}
        assert statuses == {"start.py": "ok", "hang.py": "timeout"}
        assert _alive(child), "the earlier callback's program was killed with the worker"
    finally:
        d.close()
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def test_unwritable_journal_refuses_emit_and_says_why(tmp_path, monkeypatch, backend):
    from qbcallbacks.audit.journal import Journal, JournalError

    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                    audit=backend.location()) as d:
        real = Journal.append

        def full(self, event, job_json):
            raise JournalError("cannot write the event journal: No space left on device")

        monkeypatch.setattr(Journal, "append", full)
        with pytest.raises(DispatcherUnavailable, match="No space left"):
            d.emit(Event(name="complete", type="job", job=1))
        assert not d.health.ok and "No space" in (d.health.problem or "")
        monkeypatch.setattr(Journal, "append", real)
        d.emit(Event(name="complete", type="job", job=2))
        assert d.health.ok
        assert d.wait_idle(10)
    assert [c.job_id for c in rt.calls] == [2]


def test_backlog_is_bounded_and_waits_in_the_journal(tmp_path, backend):
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    rt.hold.clear()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=backend.location(),
                   settings=DispatcherSettings(max_backlog=2, batch=1, max_runs=1))
    try:
        for job in range(1, 7):
            d.emit(Event(name="complete", type="job", job=job))
        assert rt.started.wait(10)
        # Two firings in flight (one held in its run, one waiting for a lane): the matcher
        # stops there, and the other four events wait in the queue, unrecorded.
        deadline = time.monotonic() + 30
        while (d.backlog, d.queue_depth) != (2, 4):
            assert time.monotonic() < deadline, (d.backlog, d.queue_depth)
            time.sleep(0.01)
        assert len(d.audit.query()) == 2
        rt.hold.set()
        assert d.wait_idle(20)
    finally:
        rt.hold.set()
        d.close()
    assert sorted(r.job for r in d.audit.query()) == list(range(1, 7))


class _FailsOnce(SqliteAuditStore):
    """A trail whose first batch fails with an error that is not the trail's (a fault of
    ours in recording, say): nothing to retry."""

    failed = False

    def record_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise RuntimeError("a fault while recording")
        return super().record_batch(*args, **kwargs)


def test_a_batch_that_fails_for_no_reason_of_the_trail_is_counted_lost_and_drain_ends(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=_FailsOnce(tmp_path / "audit.db"))
    d.emit(Event(name="complete", type="job", job=1))
    assert d.wait_idle(30)  # the failed batch does not stay counted
    assert d.lost_events == 1 and rt.calls == []
    assert "recording 1 events failed; they are lost" in caplog.text
    d.emit(Event(name="complete", type="job", job=2))
    assert d.wait_idle(30)
    assert [c.job_id for c in rt.calls] == [2]
    assert d.close(drain=True, timeout=30)
