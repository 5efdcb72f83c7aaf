"""An executing replay runs its stream's events and nothing else: on random streams with time
events, the firings recorded by execution are exactly those `--dry-run` predicts, whatever
the wall clock does meanwhile."""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.cli import cli
from qbcallbacks.cli._execute import execute_stream
from qbcallbacks.cli.replay import dry_run_lines, load_rules
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event
from qbcallbacks.stream import ReplayStep, read_events

RULES = {
    # Long past: a scheduler would fire it at once; a replay must not.
    "old.qcb": "dummy-time-self-10000",
    "rep.qcb": "dummy-repeat-self-10000-1",
    "at.qcb": "dummy-time-self-1000100",
    "both.qcb": "complete-job-self && dummy-time-self-1000100",
    "g.qcb": "globaltime-*",
    "grp.qcb": "globalrepeat-1000000-60",
    "kid.qcb": "dummy-time-parent-1000100",
}


def _directory(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in RULES:
        (root / name).write_text("unblock-self\n")
    (root / "callbacks.conf").write_text("".join(f"{n} = {t}\n" for n, t in RULES.items()))
    return root


_jobs = st.sampled_from([1, 2, 3])
_time_events = st.one_of(
    st.builds(lambda j, t: {"event": "dummy", "type": "time", "job": j, "extra": t},
              _jobs, st.sampled_from(["10000", "1000100", "1000200"])),
    st.builds(lambda j: {"event": "dummy", "type": "repeat", "job": j, "extra": "10000-1"},
              _jobs),
    st.builds(lambda t: {"type": "globaltime", "extra": t},
              st.sampled_from(["1000100", "1000500"])),
    st.just({"type": "globalrepeat", "extra": "1000000-60"}),
)
_job_events = st.builds(lambda n, j: {"event": n, "type": "job", "job": j},
                        st.sampled_from(["complete", "failed", "running", "removed"]), _jobs)
_own = st.just([{"triggers": "dummy-time-self-1000200", "language": "qube",
                 "code": "unblock-self"}])


def _stream(body: list[dict[str, Any]], own: list[Any]) -> list[str]:
    head = [{"event": "submit", "type": "job",
             "job": {"id": 1, "label": "render", "callbacks": own}},
            {"event": "submit", "type": "job", "job": {"id": 2, "pid": 1, "pgrp": 1}},
            {"event": "submit", "type": "job", "job": {"id": 3}}]
    return [json.dumps(line) for line in head + body]


def _predicted(directory: Path, lines: list[str]) -> Counter[tuple[int, int, str, str]]:
    rules, _, _ = load_rules([str(directory)])
    out: Counter[tuple[int, int, str, str]] = Counter()
    raw = io.BytesIO(b"".join(line.encode() + b"\n" for line in lines))
    for item in dry_run_lines(raw, Matcher(rules)):
        assert isinstance(item, tuple), item
        seq, firing = item
        out[(seq, firing.job, firing.callback, firing.trigger)] += 1
    return out


def _executed(directory: Path, lines: list[str], work: Path) -> Counter[tuple[int, int, str, str]]:
    steps = [(s.event, s.job) for s in read_events(lines) if isinstance(s, ReplayStep)]
    execute_stream([str(directory)], steps, mode="in-process", workdir=str(work / "run"),
                   progress=False)
    store = open_audit(work / "run" / "audit.db", readonly=True)
    try:
        # Every recorded event is one of the stream's: nothing was added by a clock.
        assert len(store.events()) == len(lines)
        return Counter((f.event_seq, f.job, f.callback, f.trigger) for f in store.query())
    finally:
        store.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(st.one_of(_time_events, _job_events), min_size=1, max_size=8),
       own=st.one_of(st.just([]), _own))
def test_dry_run_and_execution_agree_on_streams_with_time_events(
        body: list[dict[str, Any]], own: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        directory = _directory(work / "cb")
        lines = _stream(body, own)
        assert _executed(directory, lines, work) == _predicted(directory, lines)


def test_a_slow_repeat_callback_runs_as_often_as_predicted(tmp_path: Path) -> None:
    """`rep.qcb = dummy-repeat-self-10000-1` with a callback slower than the period: the
    executing replay runs the one predicted firing, not one per wall-clock second."""
    directory = tmp_path / "cb"
    directory.mkdir()
    (directory / "rep.py").write_text("import time\ntime.sleep(2.2)\n")
    (directory / "callbacks.conf").write_text("rep.py = dummy-repeat-self-10000-1\n")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"event": "submit", "type": "job", "job": {"id": 4}}) + "\n"
                      + json.dumps({"event": "dummy", "type": "repeat", "job": 4,
                                    "extra": "10000-1"}) + "\n")
    runner = CliRunner()
    dry = runner.invoke(cli, ["replay", str(directory), "--events", str(events), "--dry-run",
                              "--format", "json"])
    assert dry.exit_code == 0 and len(dry.output.splitlines()) == 1
    steps = [(s.event, s.job) for s in read_events(events.read_text().splitlines())
             if isinstance(s, ReplayStep)]
    assert execute_stream([str(directory)], steps, mode="in-process",
                          workdir=str(tmp_path / "run"), progress=False) == 0
    store = open_audit(tmp_path / "run" / "audit.db", readonly=True)
    try:
        assert [(f.callback, f.event.format()) for f in store.query()] == [
            ("rep.py", "dummy-repeat-4-10000-1")]
    finally:
        store.close()


def test_stream_clock_follows_time_events_only() -> None:
    from qbcallbacks.matching.clock import StreamClock, to_qube

    clock = StreamClock()
    start = clock.now()
    clock.observe(Event(name="complete", type="job", job=1))
    assert clock.now() == start
    clock.observe(Event(name="dummy", type="time", job=1, extra="1000100"))
    assert to_qube(clock.now()) == 1000100
    clock.observe(Event(name="dummy", type="repeat", job=1, extra="10-5"))
    clock.observe(Event(name="dummy", type="time", job=1, extra="soon"))
    assert to_qube(clock.now()) == 1000100

