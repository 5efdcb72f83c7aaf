from __future__ import annotations

import threading

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.clock import QUBE_EPOCH, ManualClock, SystemClock, from_qube, to_qube
from qbcallbacks.matching.schedule import Scheduler, time_spec, time_specs


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


def test_numeric_context_targets_one_job():
    sched = Scheduler()
    sched.set_specs(specs("dummy-time-7-5"), 0)
    assert [e.job for e in sched.due(from_qube(5), [1, 2, 3])] == [7]
