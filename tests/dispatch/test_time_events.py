"""Time events end to end through the dispatcher, on a manual clock: the original's documented
uses (a delayed start with a job-specific `dummy-time-self-<T>` and `unblock-self`), no
phantom jobs, and a dispatcher that takes its time events from the stream."""

from __future__ import annotations

from pathlib import Path

from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.qcb import QcbRuntime
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir


def _dispatcher(tmp_path: Path, lines: dict[str, str], sup: MemorySupervisor,
                clock: ManualClock, **config: object) -> tuple[Dispatcher, RecordingRuntime]:
    rt = RecordingRuntime()
    rts = runtimes(rt)
    rts["qcb"] = QcbRuntime(sup)
    d = Dispatcher([str(write_dir(tmp_path / "cb", lines))], sup, runtimes=rts,
                   settings=DispatcherSettings(**config), audit=tmp_path / "audit.db", clock=clock)
    return d, rt


def test_delayed_start_a_blocked_job_is_unblocked_at_its_qube_time(tmp_path: Path) -> None:
    """The original's documented time trigger: submit blocked with
    {'triggers': 'dummy-time-self-<T>', 'code': 'unblock-self'}; at T the job is pending."""
    sup = MemorySupervisor()
    clock = ManualClock(start=from_qube(1_000_000))
    job = sup.submit("later", status="blocked", callbacks=[
        JobCallback(triggers="dummy-time-self-1000120", language="qube", code="unblock-self")])
    d, _ = _dispatcher(tmp_path, {}, sup, clock)
    with d:
        d.emit(Event(name="submit", type="job", job=job.id), sup.job(job.id))
        assert d.wait_idle(10)
        clock.set(from_qube(1_000_119))
        assert d.wait_idle(10)
        assert sup.job_status(job.id) == "blocked"
        clock.set(from_qube(1_000_120))
        assert d.wait_idle(10)
        assert sup.job_status(job.id) == "pending"
        clock.set(from_qube(1_000_500))
        assert d.wait_idle(10)
    fired = [(r.callback, r.event.format()) for r in d.audit.query()]
    assert fired == [(f"job:{job.id}#0", f"dummy-time-{job.id}-1000120")]


def test_a_job_callback_time_is_forgotten_when_the_job_is_removed(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    clock = ManualClock(start=from_qube(1_000_000))
    job = Job(id=4, callbacks=(JobCallback(triggers="dummy-time-self-1000100", language="qube",
                                           code="kill-self"),))
    d, _ = _dispatcher(tmp_path, {}, sup, clock)
    with d:
        d.emit(Event(name="submit", type="job", job=4), job)
        d.emit(Event(name="removed", type="job", job=4))
        assert d.wait_idle(10)
        clock.set(from_qube(1_000_200))
        assert d.wait_idle(10)
    assert [r.event.format() for r in d.audit.query()] == []


def test_a_numeric_context_never_makes_a_phantom_job(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    clock = ManualClock(start=from_qube(1_000_000))
    d, rt = _dispatcher(tmp_path, {"tid.py": "dummy-time-5-1000150", "all.py": "global"},
                        sup, clock)
    with d:
        d.emit(Event(name="submit", type="job", job=3))
        clock.set(from_qube(1_000_150))
        assert d.wait_idle(10)
        d.emit(Event(name="global", type="global", job=0))
        assert d.wait_idle(10)
    # No event about job 5 was raised, so job 5 never became live and gets no global firing.
    assert [(c.callback, c.job_id) for c in rt.calls] == [("all.py", 3)]


def test_stream_time_events_the_clock_adds_nothing(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    clock = ManualClock(start=from_qube(1_000_000))
    d, rt = _dispatcher(tmp_path, {"rep.py": "dummy-repeat-self-10000-1",
                                   "old.py": "dummy-time-self-10000"},
                        sup, clock, time_events="stream")
    with d:
        d.emit(Event(name="submit", type="job", job=3))
        clock.advance(50)
        d.emit(Event(name="dummy", type="repeat", job=3, extra="10000-1"))
        assert d.wait_idle(10)
    assert [(c.callback, c.event.format()) for c in rt.calls] == [
        ("rep.py", "dummy-repeat-3-10000-1")]


def test_time_events_are_raised_about_the_jobs_the_matcher_holds_live(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    clock = ManualClock(start=from_qube(1_000_000))
    d, rt = _dispatcher(tmp_path, {"t.py": "dummy-time-self-1000100"}, sup, clock)
    with d:
        for job in (3, 4):
            d.emit(Event(name="submit", type="job", job=job))
        d.emit(Event(name="removed", type="job", job=4))
        # Known only through the job given with an event about another one: live as well.
        d.emit(Event(name="submit", type="job", job=5), Job(id=6))
        assert d.wait_idle(10)
        clock.set(from_qube(1_000_100))
        assert d.wait_idle(10)
    assert sorted(c.job_id for c in rt.calls) == [3, 5, 6]
