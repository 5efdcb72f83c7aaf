"""An executing replay runs each event in its own state: event N is applied, what it fired runs
to an end, and only then is event N+1 applied. Proved on random streams (every callback's
`qb.jobinfo` answer is the state after its own event, as an oracle supervisor that applies the
stream one event at a time has it) and on the original's delayed start."""

from __future__ import annotations

import json
import mailbox
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.cli import cli
from qbcallbacks.cli._execute import execute_stream
from qbcallbacks.reference.sqlite import SqliteSupervisor
from qbcallbacks.stream import ReplayStep, read_events

STATES = ["running", "complete", "failed", "killed", "blocked", "waiting"]
PROBE = ("import qb\n"
         "[job] = qb.jobinfo('-id', qb.jobid())\n"
         "print(qb.jobid(), job['status'])\n")


def _probe_directory(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "probe.py").write_text(PROBE)
    trigger = " || ".join(f"{state}-job-self" for state in ["submit", *STATES])
    (root / "callbacks.conf").write_text(f"probe.py = {trigger}\n")
    return root


def _oracle(lines: list[str], db: Path) -> dict[tuple[int, int], str]:
    """(seq, job) -> the job's status after event `seq`, applying one event at a time."""
    farm = SqliteSupervisor(db)
    try:
        seen: dict[tuple[int, int], str] = {}
        for step in read_events(lines):
            assert isinstance(step, ReplayStep), step
            farm.apply(step.event, step.job)
            job = farm.job(step.event.job)
            assert job is not None
            seen[(step.seq, step.event.job)] = job.status
        return seen
    finally:
        farm.close()


_events = st.lists(st.builds(lambda n, j: {"event": n, "type": "job", "job": j},
                             st.sampled_from(STATES), st.sampled_from([1, 2, 3])),
                   min_size=1, max_size=10)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_events, start=st.sampled_from(["pending", "blocked"]))
def test_each_callback_sees_the_state_after_its_own_event(body: list[dict[str, Any]],
                                                          start: str) -> None:
    head = [{"event": "submit", "type": "job", "job": {"id": i, "status": start}}
            for i in (1, 2, 3)]
    lines = [json.dumps(line) for line in head + body]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        directory = _probe_directory(work / "cb")
        steps = [(s.event, s.job) for s in read_events(lines) if isinstance(s, ReplayStep)]
        assert execute_stream([str(directory)], steps, mode="in-process",
                              workdir=str(work / "run"), progress=False) == 0
        expected = _oracle(lines, work / "oracle.db")
        store = open_audit(work / "run" / "audit.db", readonly=True)
        try:
            records = store.query()
        finally:
            store.close()
        assert len(records) == len(lines)  # every event fired the probe once
        for record in records:
            assert record.status == "ok", record
            answer = f"{record.job} {expected[(record.event_seq, record.job)]}\n"
            assert record.output == answer, (record.event_seq, lines[record.event_seq])


def test_a_delayed_start_replayed_unblocks_then_mails_complete(tmp_path: Path) -> None:
    """The original's delayed start, recorded: submitted blocked with `dummy-time-self-<T>`
    and `unblock-self`, the time event, then the job runs and completes. The unblock sees the
    job blocked and makes it pending (it is not refused because a later line completed the
    job), and the status mail of `complete-job-7` says complete."""
    root = tmp_path / "cb"
    root.mkdir()
    (root / "mail-status.qcb").write_text("mail-status\n")
    (root / "probe.py").write_text(PROBE)
    (root / "callbacks.conf").write_text("mail-status.qcb = done-job-self\n"
                                         "probe.py = check-job-self\n")
    own = [{"triggers": "dummy-time-self-1000120", "language": "qube", "code": "unblock-self"}]
    lines = [
        {"event": "submit", "type": "job", "job": {"id": 7, "status": "blocked",
                                                     "email": "wrangler@example.com",
                                                     "callbacks": own}},
        {"event": "dummy", "type": "time", "job": 7, "extra": "1000120"},
        {"event": "check", "type": "job", "job": 7},
        {"event": "running", "type": "job", "job": 7},
        {"event": "complete", "type": "job", "job": 7},
    ]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["replay", str(root), "--events", str(events),
                                      "--execute", "--workdir", str(run), "--no-progress",
                                      "--mode", "in-process"])
    assert result.exit_code == 0, result.output
    store = open_audit(run / "audit.db", readonly=True)
    try:
        by_seq = {r.event_seq: r for r in store.query()}
    finally:
        store.close()
    unblock = by_seq[1]
    assert (unblock.callback, unblock.status) == ("job:7#0", "ok"), unblock
    assert by_seq[2].output == "7 pending\n", unblock  # blocked -> pending, before it ran
    box = mailbox.mbox(str(run / "mail.mbox"))
    try:
        [message] = list(box)
    finally:
        box.close()
    text = f"{message['Subject']}\n{message.get_payload()}"
    assert "complete" in text and "killed" not in text and "blocked" not in text, text


def test_a_replay_whose_every_rule_was_refused_exits_1_with_the_reason(
        tmp_path: Path) -> None:
    root = tmp_path / "cb"
    root.mkdir()
    (root / "a.qcb").write_text("unblock-self\n")
    (root / "callbacks.conf").write_text("a.qcb = complete-job-self\n")
    root.chmod(0o777)  # anyone may plant a script: every rule of it is refused
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"event": "complete", "type": "job", "job": {"id": 3}})
                      + "\n")
    result = CliRunner().invoke(cli, ["replay", str(root), "--events", str(events),
                                      "--execute", "--workdir", str(tmp_path / "run"),
                                      "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "nothing ran: every rule was refused" in result.output
    # With a rule that loads, the same stream runs and exits 0.
    root.chmod(0o755)
    again = CliRunner().invoke(cli, ["replay", str(root), "--events", str(events),
                                     "--execute", "--workdir", str(tmp_path / "run2"),
                                     "--no-progress"])
    assert again.exit_code == 0, again.output
