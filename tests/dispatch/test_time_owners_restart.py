"""Time instants across a killed host: the engine's own time events keep their stamp (the
instant, and the one owner an owed instant is for) through the journal, so after a SIGKILL
and a restart each callback takes each instant once, as the trail shows."""

from __future__ import annotations

import signal
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.errors import QbCallbacksError
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir
from support.hosts import run_until_marker

TESTS = str(Path(__file__).resolve().parent.parent)

ALLOWED = DispatcherSettings(allow_global_callbacks=True)
REPORT = "print('fired')\n"

#: A host whose matcher stops at the `hold` event, so what comes after it is journalled and
#: never matched: the instant raised for everyone, then the one owed to a late global.
HELD_HOST = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.dispatch_fakes import RecordingRuntime, runtimes
    from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings, MatcherSource
    from qbcallbacks.matching.clock import ManualClock, from_qube
    from qbcallbacks.model.events import Event

    from qbcallbacks.reference.memory import MemorySupervisor

    class Held(MatcherSource):
        def observe(self, event, job):
            if event.name == "hold":
                Path({held!r}).write_text("held")
                threading.Event().wait()
            return super().observe(event, job)

    clock = ManualClock(start=from_qube(1_000_000))
    d = Dispatcher([{root!r}], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                   matcher=Held(), audit={audit!r}, clock=clock,
                   settings=DispatcherSettings(allow_global_callbacks=True))
    d.emit(Event(name="submit", type="job", job=1))
    assert d.wait_idle(30)
    d.emit(Event(name="hold", type="job", job=1))
    while not Path({held!r}).exists():
        threading.Event().wait(0.01)
    clock.set(from_qube(1_000_060))  # raised for the rules: journalled, not matched
    d.submit_global("globaltime-1000050", language="python", code={code!r})
    clock.set(from_qube(1_000_061))  # owed to the global alone: journalled, not matched
    Path({marker!r}).write_text("journalled")
    threading.Event().wait()
""")


#: A host killed after a global callback fired on an instant and before that batch reached
#: the trail: the firing never ran, so the restart must fire it.
UNRECORDED_HOST = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from support.dispatch_fakes import RecordingRuntime, runtimes
    from qbcallbacks.dispatch import recorder
    from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
    from qbcallbacks.matching.clock import ManualClock, from_qube
    from qbcallbacks.reference.memory import MemorySupervisor

    record = recorder.Recorder.record

    def held(self, events, pending, *rest):
        if any(p.callback.startswith("global:") for p in pending):
            Path({marker!r}).write_text("fired, not recorded")
            threading.Event().wait()
        return record(self, events, pending, *rest)

    recorder.Recorder.record = held
    clock = ManualClock(start=from_qube(1_000_000))
    d = Dispatcher([{root!r}], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                   audit={audit!r}, clock=clock,
                   settings=DispatcherSettings(allow_global_callbacks=True))
    d.submit_global("globaltime-1000050", language="python", code={code!r})
    clock.set(from_qube(1_000_060))
    threading.Event().wait()
""")


def test_an_owed_instant_read_back_after_a_kill_reaches_its_owner_alone(
        tmp_path: Path) -> None:
    root = write_dir(tmp_path / "cb", {"note.py": "globaltime-1000050"})
    (root / "note.py").write_text(REPORT)
    audit, marker = tmp_path / "audit.db", tmp_path / "journalled"
    script = HELD_HOST.format(tests=TESTS, root=str(root), audit=str(audit), code=REPORT,
                              held=str(tmp_path / "held"), marker=str(marker))
    killed_at_marker(script, marker)
    clock = ManualClock(start=from_qube(1_000_062))
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                    audit=audit, clock=clock, settings=ALLOWED) as d:
        assert d.previous_run_died
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_200))  # nothing is left to raise: nothing fires again
        assert d.wait_idle(30)
        [global_id] = [g.id for g in d.globals()]
    trail = open_audit(audit)
    try:
        fired = Counter((f.callback, f.job, f.event.format()) for f in trail.query())
    finally:
        trail.close()
    instant = "dummy-globaltime-0-1000050"
    assert fired == Counter({("note.py", 1, instant): 1, (f"global:{global_id}", 0, instant): 1})


def test_an_embedder_cannot_pass_its_event_off_as_the_engines(tmp_path: Path) -> None:
    with Dispatcher([str(write_dir(tmp_path / "cb", {}))], MemorySupervisor(),
                    runtimes=runtimes(RecordingRuntime()), audit=tmp_path / "a.db") as d:
        with pytest.raises(QbCallbacksError, match="qbcallbacks:time"):
            d.emit(Event(name="dummy", type="globaltime", job=0, extra="5"),
                   key=["qbcallbacks:time", "rules", "5.0", 1])
        assert d.wait_idle(30)
        assert d.audit.events(d.session) == []


def test_a_global_firing_killed_before_it_was_recorded_fires_after_the_restart(
        tmp_path: Path) -> None:
    root = write_dir(tmp_path / "cb", {})
    audit, marker = tmp_path / "audit.db", tmp_path / "fired"
    killed_at_marker(UNRECORDED_HOST.format(tests=TESTS, root=str(root), audit=str(audit),
                                            code=REPORT, marker=str(marker)), marker)
    clock = ManualClock(start=from_qube(1_000_061))
    with Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                    audit=audit, clock=clock, settings=ALLOWED) as d:
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_200))
        assert d.wait_idle(30)
        [kept] = d.globals()
    trail = open_audit(audit)
    try:
        fired = [(f.callback, f.event.format(), f.status) for f in trail.query()]
    finally:
        trail.close()
    assert fired == [(f"global:{kept.id}", "dummy-globaltime-0-1000050", "ok")]
    assert kept.last_instant == 1_000_050


def killed_at_marker(script: str, marker: Path) -> None:
    """Run a host until it writes `marker`, then kill it with SIGKILL."""
    assert run_until_marker(script, marker) == -signal.SIGKILL
