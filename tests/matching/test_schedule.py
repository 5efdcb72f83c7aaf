from __future__ import annotations

import threading

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.clock import QUBE_EPOCH, ManualClock, SystemClock, from_qube, to_qube
from qbcallbacks.matching.schedule import Scheduler, job_time_specs, time_spec, time_specs
from qbcallbacks.model.events import Job, JobCallback


def specs(*texts: str):
    return time_specs(parse_trigger(t) for t in texts)


def test_qube_clock_offset():
    assert QUBE_EPOCH == 946702800
    assert to_qube(946702800 + 5) == 5
    assert from_qube(10) == 946702810


def test_manual_clock_notifies_and_never_goes_back():
    clock = ManualClock(start=from_qube(100))
    seen: list[float] = []
    unsubscribe = clock.subscribe(lambda: seen.append(clock.qube_now()))
    clock.advance(5)
    clock.set(from_qube(50))
    unsubscribe()
    clock.advance(1)
    assert seen == [105, 105]
    assert clock.qube_now() == 106


def test_system_clock_wait_is_woken():
    wake = threading.Event()
    wake.set()
    assert SystemClock().wait(wake, 10) is True


def test_time_spec_shapes():
    (one,) = specs("dummy-time-self-1000")
    assert (one.name, one.type, one.start, one.interval) == ("dummy", "time", 1000, 0)
    assert one.job is None
    (rep,) = specs("tick-repeat-42-100-10")
    assert (rep.start, rep.interval, rep.job) == (100, 10, 42)
    (glob,) = specs("globaltime-10000")
    assert glob.is_global and glob.start == 10000
    assert specs("dummy-time-self-*", "dummy-time-self-abc", "complete-job-self") == set()
    assert time_spec(parse_trigger("globalrepeat-5-0")) is None  # type: ignore[arg-type]


def test_scheduler_one_shot_fires_once_per_live_job():
    sched = Scheduler()
    sched.set_specs(specs("dummy-time-self-1000 && complete-job-self", "globaltime-1000"), 0)
    assert sched.next_due() == from_qube(1000)
    assert sched.due(from_qube(999), [1, 2]) == []
    events = sched.due(from_qube(1000), [2, 1])
    formatted = sorted(e.format() for e in events)
    assert formatted == ["dummy-globaltime-0-1000", "dummy-time-1-1000", "dummy-time-2-1000"]
    assert sched.due(from_qube(5000), [1, 2]) == []
    assert sched.next_due() is None


def test_scheduler_repeat_skips_missed_periods():
    sched = Scheduler()
    sched.set_specs(specs("globalrepeat-100-10"), 0)
    assert [e.extra for e in sched.due(from_qube(100), [])] == ["100-10"]
    # A host asleep for 10 periods fires once, then resumes on the grid.
    assert len(sched.due(from_qube(205), [])) == 1
    assert sched.next_due() == from_qube(210)


def test_scheduler_reload_keeps_fired_one_shots():
    sched = Scheduler()
    sched.set_specs(specs("globaltime-10"), 0)
    assert len(sched.due(from_qube(10), [])) == 1
    sched.set_specs(specs("globaltime-10", "globaltime-20"), 0)
    assert [e.extra for e in sched.due(from_qube(30), [])] == ["20"]
    sched.set_specs(specs("globaltime-40"), 0)
    sched.set_specs(set(), 0)
    assert sched.next_due() is None


def test_numeric_context_targets_one_live_job_and_never_a_phantom():
    sched = Scheduler()
    sched.set_specs(specs("dummy-time-7-5", "dummy-repeat-8-5-10"), 0)
    assert [e.job for e in sched.due(from_qube(5), [1, 2, 3, 8])] == [8]
    assert [e.format() for e in sched.due(from_qube(15), [7, 8])] == ["dummy-repeat-8-5-10"]


def test_job_specific_schedules_name_their_own_job_and_go_with_it():
    owner = Job(id=7, pid=3, callbacks=(
        JobCallback(triggers="dummy-time-self-100", language="qube", code="unblock-self"),
        JobCallback(triggers="dummy-time-parent-200 || x-time-self-bad", language="qube"),
        JobCallback(triggers="complete-job-self &&", language="qube")))
    sched = Scheduler()
    sched.set_specs(specs("dummy-time-self-100"), 0)
    sched.set_job_specs(7, job_time_specs(owner))
    assert {(s.job, s.start) for s in sched.specs} == {(None, 100), (7, 100), (3, 200)}
    # One event per job and instant, however many schedules name it.
    assert [e.format() for e in sched.due(from_qube(100), [3, 7])] == [
        "dummy-time-3-100", "dummy-time-7-100"]
    assert [e.format() for e in sched.due(from_qube(200), [3, 7])] == ["dummy-time-3-200"]
    sched.set_job_specs(7, job_time_specs(owner.model_copy(update={"callbacks": ()})))
    sched.drop_job(7)
    assert {s.job for s in sched.specs} == {None}


def test_a_job_submitted_after_its_instant_fires_at_once():
    sched = Scheduler()
    late = Job(id=4, callbacks=(JobCallback(triggers="dummy-time-self-100", language="qube"),))
    sched.set_job_specs(4, job_time_specs(late))
    assert [e.format() for e in sched.due(from_qube(5000), [4])] == ["dummy-time-4-100"]
    assert sched.due(from_qube(6000), [4]) == []
