"""Shared time instants end to end on a manual clock: each owner of a schedule (the universal
rules, a job's own callbacks, a global callback) takes each instant once, and one that takes
a schedule up after its instant was raised gets that instant alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.dispatch.globals import WithGlobals
from qbcallbacks.dispatch.matchloop import MatcherSource
from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.matching.globals import GlobalMatcher
from qbcallbacks.matching.owner import Audience
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.model.globals import GlobalCallback
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.qcb import QcbRuntime
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir


def _dispatcher(tmp_path: Path, lines: dict[str, str], clock: ManualClock,
                **config: object) -> Dispatcher:
    sup = MemorySupervisor()
    rts = runtimes(RecordingRuntime())
    rts["qcb"] = QcbRuntime(sup)
    return Dispatcher([str(write_dir(tmp_path / "cb", lines))], sup, runtimes=rts,
                      settings=DispatcherSettings(**config), audit=tmp_path / "audit.db",
                      clock=clock)


def _own(*triggers: str) -> tuple[JobCallback, ...]:
    return tuple(JobCallback(triggers=t, language="qube", code="mail-status") for t in triggers)


def _fired(d: Dispatcher) -> list[tuple[str, int, str]]:
    return sorted((r.callback, r.job, r.event.format()) for r in d.audit.query())


def test_a_job_callback_attached_after_a_rule_raised_its_instant_gets_it_alone(
        tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    d = _dispatcher(tmp_path, {"note.py": "globaltime-1000050",
                               "tick.py": "globalrepeat-1000010-100"}, clock)
    with d:
        d.emit(Event(name="submit", type="job", job=1))
        d.emit(Event(name="submit", type="job", job=3),
               Job(id=3, callbacks=_own("globaltime-1000050")))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_060))  # the rules' instants, for jobs 1 and 3
        assert d.wait_idle(30)
        d.emit(Event(name="submit", type="job", job=2),
               Job(id=2, callbacks=_own("globaltime-1000050", "globalrepeat-1000010-100",
                                        "globaltime-1000055")))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_061))
        assert d.wait_idle(30)
        first = _fired(d)
        clock.set(from_qube(1_000_110))  # the repeat's next instant: once for every owner
        assert d.wait_idle(30)
        later = Counter(_fired(d)) - Counter(first)
    g50, g55 = "dummy-globaltime-0-1000050", "dummy-globaltime-0-1000055"
    rep = "dummy-globalrepeat-0-1000010-100"
    assert first == sorted([
        ("job:2#0", 2, g50), ("job:2#1", 2, rep), ("job:2#2", 2, g55),
        ("job:3#0", 3, g50),
        ("note.py", 1, g50), ("note.py", 3, g50), ("tick.py", 1, rep), ("tick.py", 3, rep)])
    assert later == Counter([("job:2#1", 2, rep), ("tick.py", 1, rep), ("tick.py", 2, rep),
                             ("tick.py", 3, rep)])


def test_a_rule_reloaded_in_on_an_instant_a_job_already_had_gets_it_alone(
        tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    d = _dispatcher(tmp_path, {}, clock, attach="live")
    with d:
        d.emit(Event(name="submit", type="job", job=1),
               Job(id=1, callbacks=_own("globaltime-1000050")))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_060))
        assert d.wait_idle(30)
        write_dir(tmp_path / "cb", {"late.py": "globaltime-1000050"})
        d.reload()
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_061))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_500))
        assert d.wait_idle(30)
    g50 = "dummy-globaltime-0-1000050"
    assert _fired(d) == [("job:1#0", 1, g50), ("late.py", 1, g50)]


def test_a_job_removed_before_its_owed_instant_is_matched_gets_nothing(tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    d = _dispatcher(tmp_path, {"note.py": "dummy-time-self-1000050"}, clock)
    with d:
        d.emit(Event(name="submit", type="job", job=1))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_060))
        assert d.wait_idle(30)
        d.emit(Event(name="submit", type="job", job=2),
               Job(id=2, callbacks=_own("dummy-time-self-1000050")))
        d.emit(Event(name="removed", type="job", job=2))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_061))
        assert d.wait_idle(30)
        live = d._loop.rebuilt.matcher.live_jobs  # type: ignore[union-attr]
    assert _fired(d) == [("note.py", 1, "dummy-time-1-1000050")]
    assert live == (1,)  # the late instant about job 2 made no phantom job


def test_a_global_takes_the_instant_a_late_matched_raise_stands_for() -> None:
    """A repeat's event text does not say which instant it is: a raise matched after the next
    period came due still counts for its own instant, so the next raise fires again."""
    found = GlobalMatcher(parse_trigger)
    found.add(GlobalCallback(id=1, trigger="globalrepeat-10-100", language="python", code="x"))
    source = WithGlobals(MatcherSource(), found, ManualClock(start=from_qube(260)))
    tick = Event(name="dummy", type="globalrepeat", job=0, extra="10-100")
    assert len(source.observe_for(tick, Audience(instant=110))) == 1
    assert len(source.observe_for(tick, Audience(instant=210))) == 1
    assert source.observe_for(tick, Audience(instant=210)) == []
