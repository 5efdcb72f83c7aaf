"""The execution mode of `replay`: a stream run for real, its trail checked like simulate's."""

from __future__ import annotations

import json
from collections import Counter

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.reconcile import predict
from qbcallbacks.cli._execute import execute_stream
from qbcallbacks.config.load import load_callback_path
from qbcallbacks.model.events import Event, Job
from support.paths import EXAMPLES


def stream() -> list[tuple[Event, Job | None]]:
    render = Job(id=10, label="render", name="shot_render")
    comp = Job(id=11, pgrp=10, pid=10, label="comp", name="shot_comp", status="blocked")
    out: list[tuple[Event, Job | None]] = [
        (Event(name="submit", type="job", job=10), render),
        (Event(name="submit", type="job", job=11), comp),
        (Event(name="blocked", type="work", job=11, extra="1"), None),
        (Event(name="complete", type="work", job=10, extra="1"), None),
        (Event(name="failed", type="work", job=10, extra="2"), None),
        (Event(name="failed", type="job", job=10), None),
    ]
    return out


def test_execute_stream_runs_every_predicted_firing(tmp_path, capsys):
    code = execute_stream([str(EXAMPLES)], stream(), mode="in-process",
                          workdir=str(tmp_path / "run"), progress=False)
    out = capsys.readouterr().out
    assert code == 0, out
    store = open_audit(tmp_path / "run" / "audit.db", readonly=True)
    try:
        firings = store.query()
        events = store.events()
    finally:
        store.close()
    rules = load_callback_path([str(EXAMPLES)]).rules
    assert Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings) == \
        Counter(predict(rules, events))
    assert {f.status for f in firings} == {"ok"}, [(f.callback, f.output) for f in firings]
    # unblock-frame.qcb acted on the reference supervisor: comp's frame 1 was unblocked.
    unblock = [f for f in firings if f.callback == "unblock-frame.qcb" and f.job == 11]
    assert unblock and "unblock work '1' of job 11" in unblock[0].output
    assert (tmp_path / "run" / "submitted.log").read_text().count("submitted") == 2
    assert "every predicted firing ran" in out


def test_replay_cli_executes_with_execute(tmp_path):
    from qbcallbacks.cli import main

    events = tmp_path / "events.jsonl"
    with events.open("w") as fh:
        for event, job in stream():
            fh.write(json.dumps({"event": event.name, "type": event.type,
                                 "job": job.model_dump(mode="json") if job else event.job,
                                 "extra": event.extra}) + "\n")
    run = tmp_path / "run"
    code = main(["replay", str(EXAMPLES), "--events", str(events), "--execute",
                 "--mode", "in-process", "--workdir", str(run),
                 "--audit", str(run / "audit.db"), "--log-dir", str(run / "logs"),
                 "--timeout", "20"])
    assert code == 0
    store = open_audit(run / "audit.db", readonly=True)
    try:
        assert {f.status for f in store.query()} == {"ok"}
        assert len(store.query()) > 5
    finally:
        store.close()
    assert any((run / "logs").glob("*.cb"))
