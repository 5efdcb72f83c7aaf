"""Events reach the matcher thread a batch at a time and are matched a batch at a time: what
a batch gathered and not yet recorded is still the journal's, and one event the matcher
fails on costs that event alone."""

from __future__ import annotations

import signal
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings, MatcherSource
from qbcallbacks.matching.matcher import Firing, Matcher
from qbcallbacks.model.events import Event, Job
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, recover, runtimes, write_dir
from support.hosts import run_until_marker

TESTS = str(Path(__file__).resolve().parent.parent)

# The matcher thread's gathering pause is where the host dies: every event was accepted
# (journalled) and taken off the intake, none is matched or recorded yet.
GATHERING_HOST = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.dispatch_fakes import RecordingRuntime, runtimes
    from qbcallbacks.dispatch import matchloop
    from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
    from qbcallbacks.model.events import Event
    from qbcallbacks.reference.memory import MemorySupervisor

    emitted = threading.Event()

    class Clock:
        @staticmethod
        def sleep(seconds):
            emitted.wait()
            Path({marker!r}).write_text("gathering")
            threading.Event().wait()

    matchloop.time = Clock
    d = Dispatcher([{root!r}], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                   audit={audit!r}, settings=DispatcherSettings(queue_size=5000))
    for job in range(1, {n} + 1):
        d.emit(Event(name="complete", type="job", job=job))
    emitted.set()
    threading.Event().wait()
""")


def test_host_killed_while_a_batch_gathers_loses_none_of_it(tmp_path, backend):
    n = 100  # fewer than a quarter of a batch: the matcher thread gathers them
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    audit, marker = backend.location(), tmp_path / "gathering"
    script = GATHERING_HOST.format(tests=TESTS, root=str(root), audit=str(audit),
                                   marker=str(marker), n=n)
    assert run_until_marker(script, marker) == -signal.SIGKILL
    rows, calls = recover(root, audit)
    assert sorted(r.job for r in rows) == list(range(1, n + 1))
    assert sorted(c.job_id for c in calls) == list(range(1, n + 1))


class _FailsOnJob2(Matcher):
    def observe(self, event: Event, job: Job | None = None) -> list[Firing]:
        if event.job == 2:
            raise RuntimeError("a matcher fault")
        return super().observe(event, job)


class _Held(MatcherSource):
    """Holds the matcher thread at its first event, so the next ones queue up together."""

    def __init__(self) -> None:
        super().__init__(_FailsOnJob2())
        self.gate, self.entered, self._first = threading.Event(), threading.Event(), True

    def observe_many(self, events):  # type: ignore[no-untyped-def]
        if self._first:
            self._first = False
            self.entered.set()
            self.gate.wait(30)
        return super().observe_many(events)


def test_matcher_fault_on_one_event_of_a_batch_loses_that_event_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt, source = RecordingRuntime(), _Held()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), matcher=source,
                   audit=tmp_path / "audit.db", settings=DispatcherSettings(gather=0))
    try:
        d.emit(Event(name="complete", type="job", job=9))
        assert source.entered.wait(30)
        for job in (1, 2, 3):  # one batch behind the held one
            d.emit(Event(name="complete", type="job", job=job))
        source.gate.set()
        assert d.wait_idle(30)
        events = d.audit.events(d.session)
        assert d.lost_events == 1
    finally:
        source.gate.set()
        d.close()
    assert sorted(c.job_id for c in rt.calls) == [1, 3, 9]
    assert [e.event.job for e in events] == [9, 1, 2, 3]  # recorded, without its firings
    assert "matcher failed on" in caplog.text and "a matcher fault" in caplog.text


def test_gather_is_bounded_by_the_settings() -> None:
    with pytest.raises(ValueError):
        DispatcherSettings(gather=-0.1)
    with pytest.raises(ValueError):
        DispatcherSettings(gather=5)


def test_a_caller_in_wait_idle_is_seen_so_no_batch_pauses_to_gather() -> None:
    """The matcher thread skips its gathering pause while `awaited`: true exactly while a
    caller waits in `wait_idle`, so such a caller never waits out a pause."""
    from qbcallbacks.dispatch.state import InFlight

    work = InFlight()
    work.add()
    assert not work.awaited
    waiter = threading.Thread(target=work.wait_idle, args=(None,))
    waiter.start()
    seen = threading.Event()
    while not seen.wait(0.01):
        if work.awaited:
            seen.set()
    work.done()
    waiter.join(30)
    assert not waiter.is_alive()
    assert not work.awaited


def _ran(rt: RecordingRuntime, count: int) -> bool:
    """Whether `count` runs were made within 30 s."""
    done = threading.Event()
    for _ in range(3000):
        with rt.lock:
            if len(rt.calls) >= count:
                return True
        done.wait(0.01)
    return False


class _Clock:
    """`matchloop.time` with its sleeps counted: the gathering pause and the yields."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        from qbcallbacks.dispatch import matchloop

        self.sleeps: list[float] = []
        self._real = time
        monkeypatch.setattr(matchloop, "time", self)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._real.sleep(seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_a_trickle_batch_is_matched_and_committed_a_few_events_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events that come one by one are gathered into one batch; it is matched
    `YIELD_EVERY` events at a time and committed `RECORD_EVERY` at a time, with a sleep
    between (which hands the interpreter to the next event's sender), and every event is
    matched in order with its firings."""
    from qbcallbacks.dispatch import matchloop, recorder

    clock = _Clock(monkeypatch)
    commits: list[int] = []
    real_record = recorder.Recorder.record

    def record(self: recorder.Recorder, events: list[Any], *rest: Any) -> Any:
        commits.append(len(events))
        return real_record(self, events, *rest)

    monkeypatch.setattr(recorder.Recorder, "record", record)
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt, source = RecordingRuntime(), _Held()
    source.matcher = Matcher()  # no fault: every event fires
    n = matchloop.RECORD_EVERY + 5 * matchloop.YIELD_EVERY
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), matcher=source,
                   audit=tmp_path / "audit.db", settings=DispatcherSettings(gather=0.2))
    try:
        d.emit(Event(name="complete", type="job", job=1000))
        assert source.entered.wait(30)
        for job in range(1, n + 1):  # taken together, fewer than a quarter of a batch
            d.emit(Event(name="complete", type="job", job=job))
        source.gate.set()
        assert _ran(rt, n + 1)  # not `wait_idle` first: a batch it waits for is not gathered
        assert d.wait_idle(30)
        events = d.audit.events(d.session)
    finally:
        source.gate.set()
        d.close()
    assert [e.event.job for e in events] == [1000, *range(1, n + 1)]
    assert sorted(c.job_id for c in rt.calls) == sorted([1000, *range(1, n + 1)])
    assert commits[-2:] == [matchloop.RECORD_EVERY, n - matchloop.RECORD_EVERY]
    assert clock.sleeps.count(matchloop.YIELD_FOR) >= n // matchloop.YIELD_EVERY - 1


def test_a_heavy_stream_is_matched_without_yielding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that comes full (a quarter of `batch` or more) is neither gathered nor cut:
    there the matcher thread has no time to spare."""
    from qbcallbacks.dispatch import matchloop

    clock = _Clock(monkeypatch)
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt, source = RecordingRuntime(), _Held()
    source.matcher = Matcher()
    n = 64
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), matcher=source,
                   audit=tmp_path / "audit.db",
                   settings=DispatcherSettings(batch=4 * n, gather=0.2))
    try:
        d.emit(Event(name="complete", type="job", job=1000))
        assert source.entered.wait(30)
        for job in range(1, n + 1):
            d.emit(Event(name="complete", type="job", job=job))
        before = len(clock.sleeps)  # the first event's gathering pause is behind us
        source.gate.set()
        assert d.wait_idle(30)
        events = d.audit.events(d.session)
    finally:
        source.gate.set()
        d.close()
    assert [e.event.job for e in events] == [1000, *range(1, n + 1)]
    assert matchloop.YIELD_FOR not in clock.sleeps[before:]
