"""The time-event vectors of spec/vectors/time-*.json, run through the dispatcher on a manual
clock: which events the clock raises, about which jobs, and what they fire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qbcallbacks.dispatch.dispatcher import Dispatcher
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.stream import ReplayStep, read_events
from support.dispatch_fakes import RecordingRuntime, runtimes
from support.vectors import time_cases


def _write(root: Path, conf: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for line in conf.splitlines():
        name = line.split("=")[0].strip()
        if name and not (root / name).exists():
            (root / name).write_text("unblock-self\n")
    (root / "callbacks.conf").write_text(conf)


@pytest.mark.parametrize("case", time_cases())
def test_time_vector(case: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "site"
    _write(root, case["conf"])
    lines = [json.dumps(step["event"]) for step in case["steps"] if "event" in step]
    stream = iter([s for s in read_events(lines) if isinstance(s, ReplayStep)])
    clock = ManualClock(start=from_qube(case["start"]))
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), clock=clock,
                   audit=tmp_path / "audit.db")
    with d:
        for step in case["steps"]:
            if "event" in step:
                item = next(stream)
                d.emit(item.event, item.job)
            elif "clock" in step:
                clock.set(from_qube(step["clock"]))
            else:
                _write(root, step["reload"])
                d.reload()
            assert d.wait_idle(10)
    events = {e.seq: e.event.format() for e in d.audit.events(d.session)}
    assert [events[seq] for seq in sorted(events)] == case["events"]
    firings = sorted(d.audit.query(session=d.session), key=lambda f: (f.event_seq, f.ordinal))
    assert [[events[f.event_seq], f.job, f.callback] for f in firings] == case["firings"]
