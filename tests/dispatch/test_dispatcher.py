from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from qbcallbacks.dispatch.dispatcher import (
    BackPressureError,
    Dispatcher,
    DispatcherClosed,
    DispatcherSettings,
    MatcherSource,
)
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.matching.matcher import Firing
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.model.rules import Rule
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir


def make(tmp_path, lines, rt=None, **kw):
    root = write_dir(tmp_path / "cb", lines)
    rt = rt or RecordingRuntime()
    settings = kw.pop("settings", DispatcherSettings())
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), settings=settings,
                   audit=tmp_path / "audit.db", **kw)
    return d, rt, root


def ev(name, typ, job, extra=None):
    return Event(name=name, type=typ, job=job, extra=extra)


def test_emit_runs_callbacks_and_audits_them(tmp_path):
    d, rt, root = make(tmp_path, {"a.qcb": "complete-job-self", "b.qcb": "done-job-self"},
                       settings=DispatcherSettings(timeout=7, rule_timeouts={"b.qcb": 3},
                                               log_dir=str(tmp_path / "logs")))
    with d:
        d.emit(ev("submit", "job", 1), Job(id=1, name="one"))
        d.emit(ev("complete", "job", 1))
        assert d.wait_idle(10)
        records = d.audit.query()
    assert [(r.callback, r.status, r.job, r.trigger) for r in records] == [
        ("a.qcb", "ok", 1, "complete-job-self"), ("b.qcb", "ok", 1, "done-job-self")]
    assert records[0].output == "ran a.qcb\n" and records[0].duration is not None
    by_name = {c.callback: c for c in rt.calls}
    assert by_name["a.qcb"].timeout == 7 and by_name["b.qcb"].timeout == 3
    assert by_name["a.qcb"].path == root / "a.qcb"
    assert by_name["a.qcb"].log_path == tmp_path / "logs" / "1.cb"
    # The event stream is recorded with the job as it was known.
    events = d.audit.events(d.session)
    assert [e.event.format() for e in events] == ["submit-job-1", "complete-job-1"]
    assert events[0].job_data is not None and events[0].job_data["name"] == "one"


def test_emit_returns_before_the_run(tmp_path):
    rt = RecordingRuntime()
    rt.hold.clear()
    d, rt, _ = make(tmp_path, {"a.qcb": "complete-job-self"}, rt=rt)
    try:
        # The run is held: emit returning at all shows it does not wait for the run (what
        # an emit costs is measured by bench/latency.py).
        d.emit(ev("complete", "job", 5))
        assert rt.started.wait(5)
        assert d.audit.query(status="pending")  # written before it runs
    finally:
        rt.hold.set()
        d.close()
    assert [r.status for r in d.audit.query()] == ["ok"]


def test_firings_of_one_job_keep_matcher_order(tmp_path):
    lines = {f"r{i}.qcb": "complete-work-self-*" for i in range(5)}
    d, rt, _ = make(tmp_path, lines, rt=RecordingRuntime(delay=0.001),
                    settings=DispatcherSettings(max_runs=8, per_runtime={"qcb": 8}))
    with d:
        for job in (1, 2, 3):
            for frame in range(4):
                d.emit(ev("complete", "work", job, str(frame)))
        assert d.wait_idle(20)
    for job in (1, 2, 3):
        seen = [(c.event.extra, c.callback) for c in rt.calls if c.job_id == job]
        assert seen == [(str(f), f"r{i}.qcb") for f in range(4) for i in range(5)]
    assert rt.max_running > 1  # different jobs did run side by side


def test_concurrency_limits(tmp_path):
    lines = {"a.qcb": "complete-job-self"}
    d, rt, _ = make(tmp_path, lines, rt=RecordingRuntime(delay=0.02),
                    settings=DispatcherSettings(max_runs=2, per_runtime={"qcb": 5}))
    with d:
        for job in range(1, 9):
            d.emit(ev("complete", "job", job))
        assert d.wait_idle(20)
    assert rt.max_running == 2
    assert len(rt.calls) == 8


class BlockingSource(MatcherSource):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        self.entered.set()
        self.gate.wait(10)
        return super().observe(event, job)


def test_full_queue_raises_back_pressure_and_drops_nothing(tmp_path):
    source = BlockingSource()
    d, _rt, _ = make(tmp_path, {"a.qcb": "complete-job-self"}, matcher=source,
                    settings=DispatcherSettings(queue_size=2, emit_timeout=0.05))
    try:
        d.emit(ev("complete", "job", 1))
        assert source.entered.wait(5)  # the matcher thread holds event 1
        d.emit(ev("complete", "job", 2))
        d.emit(ev("complete", "job", 3))
        # How long emit waits before it refuses is measured by bench/latency.py.
        with pytest.raises(BackPressureError, match="not accepted"):
            d.emit(ev("complete", "job", 4))
    finally:
        source.gate.set()
        d.close()
    # Every accepted event fired; the refused one is the caller's to retry, and says so.
    assert sorted(r.job for r in d.audit.query()) == [1, 2, 3]
    assert all(r.status == "ok" for r in d.audit.query())
    with pytest.raises(DispatcherClosed):
        d.emit(ev("complete", "job", 5))


def test_close_without_drain_cancels_and_records(tmp_path):
    rt = RecordingRuntime()
    rt.hold.clear()
    d, rt, _ = make(tmp_path, {"a.qcb": "complete-job-self"}, rt=rt,
                    settings=DispatcherSettings(max_runs=1))
    for job in range(1, 5):
        d.emit(ev("complete", "job", job))
    assert rt.started.wait(5)
    threading.Timer(0.1, rt.hold.set).start()
    assert d.close(drain=False) is False
    statuses = sorted(r.status for r in d.audit.query())
    assert len(statuses) == 4  # nothing vanished
    assert "cancelled" in statuses and "ok" in statuses
    assert set(statuses) <= {"ok", "cancelled"}


def test_runtime_exception_is_a_crashed_run(tmp_path):
    class Broken(RecordingRuntime):
        def run(self, invocation):
            raise RuntimeError("bug")

    d, _rt, _ = make(tmp_path, {"a.qcb": "complete-job-self"}, rt=Broken())
    with d:
        d.emit(ev("complete", "job", 1))
        assert d.wait_idle(10)
    (rec,) = d.audit.query()
    assert rec.status == "crashed" and "bug" in (rec.error or "")


def test_job_specific_callbacks_run_inline_code(tmp_path):
    d, rt, _ = make(tmp_path, {"a.qcb": "complete-job-self"},
                    settings=DispatcherSettings(allow_job_code=True))
    job = Job(id=9, callbacks=(JobCallback(triggers="complete-job-self", language="python",
                                           code="print('x')"),))
    with d:
        d.emit(ev("submit", "job", 9), job)
        d.emit(ev("complete", "job", 9))
        assert d.wait_idle(10)
    names = [(c.callback, c.code) for c in rt.calls]
    assert names == [("a.qcb", None), ("job:9#0", "print('x')")]
    assert d.audit.query(callback="job:9#0")[0].language == "python"


def test_time_events_fire_on_a_manual_clock(tmp_path):
    clock = ManualClock(start=from_qube(1000))
    d, rt, _ = make(tmp_path, {"t.qcb": "dummy-time-self-1500", "g.qcb": "globalrepeat-1000-100"},
                    clock=clock)
    with d:
        d.emit(ev("submit", "job", 3))
        assert d.wait_idle(10)
        # globalrepeat-1000-100 is due at start: fired once for the live jobs known then.
        clock.set(from_qube(1499))
        assert d.wait_idle(10)
        assert [c.callback for c in rt.calls].count("t.qcb") == 0
        clock.set(from_qube(1500))
        assert d.wait_idle(10)
    fired = [(c.callback, c.event.format()) for c in rt.calls]
    assert ("t.qcb", "dummy-time-3-1500") in fired
    assert fired.count(("t.qcb", "dummy-time-3-1500")) == 1
    assert sum(1 for c, _ in fired if c == "g.qcb") >= 1


def test_rule_numbering_follows_directories(tmp_path):
    a = write_dir(tmp_path / "a", {"x.qcb": "complete-job-self"})
    b = write_dir(tmp_path / "b", {"y.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    d = Dispatcher([f"{a},{b}"], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=tmp_path / "audit.db")
    with d:
        assert [r.position for r in d.rules] == [0, 1]
        assert [isinstance(r, Rule) for r in d.rules] == [True, True]
        d.emit(ev("complete", "job", 1))
        assert d.wait_idle(10)
    assert [c.callback for c in rt.calls] == ["x.qcb", "y.qcb"]
