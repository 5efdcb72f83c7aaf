"""End to end: `qbcallbacks simulate` on the shipped examples, checked against the matcher."""

from __future__ import annotations

import json
import mailbox
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.reconcile import predict
from qbcallbacks.cli import main
from qbcallbacks.config.load import load_callback_path
from qbcallbacks.stream import event_line
from support.paths import EXAMPLES


def simulate(tmp_path, *extra: str) -> tuple[int, Path]:
    run = tmp_path / "run"
    code = main(["simulate", str(EXAMPLES), "--workdir", str(run), "--no-progress", "--seed", "7",
                 *extra])
    return code, run


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    code, run = simulate(tmp, "--mode", "in-process")
    store = open_audit(run / "audit.db", readonly=True)
    (session, *_) = store.sessions()[-1]
    events = store.events(session)
    firings = store.query(session=session)
    store.close()
    return code, run, events, firings


def test_simulate_fires_what_the_matcher_predicts(simulated):
    code, _, events, firings = simulated
    assert code == 0
    rules = load_callback_path([str(EXAMPLES)]).rules
    expected = Counter(predict(rules, events))
    got = Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings)
    assert got == expected
    assert sum(expected.values()) > 20
    assert {f.status for f in firings} == {"ok"}


def test_simulate_examples_did_their_work(simulated):
    _, run, events, firings = simulated
    names = [e.event.format() for e in events]
    submits = [e for e in events if e.event.name == "submit"]
    by_cb = Counter(f.callback for f in firings)
    # submitted.py logged every submission, checkWork.pl every finished frame.
    assert (run / "submitted.log").read_text().count("submitted ") == len(submits)
    done_work = [e for e in events if e.event.type == "work"
                 and e.event.name in ("complete", "failed", "killed")]
    assert (run / "checkWork.log").read_text().count(" finished") == len(done_work)
    # mail-status mailed once per finished job, into the run's mbox.
    box = mailbox.mbox(run / "mail.mbox")
    try:
        assert len(box) == by_cb["mail-status.qcb"] > 0
    finally:
        box.close()
    # logFailuresToDB.py wrote one row per failed job.
    failed_jobs = [e for e in events if e.event.format().startswith("failed-job-")]
    if failed_jobs:
        db = sqlite3.connect(run / "failures.db")
        try:
            assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == len(failed_jobs)
        finally:
            db.close()
    assert names[0] == "submit-job-1"
    assert any((run / "logs").glob("*.cb"))


def test_frame_dependency_follows_the_semantics(simulated):
    """Independent of the matcher: a completed render frame fires unblock-frame.qcb on every
    job of the process group (the trigger's label context)."""
    _, _, events, firings = simulated
    jobs = {e.event.job: e.job_data for e in events if e.job_data}
    fired = Counter((f.event_seq, f.job) for f in firings if f.callback == "unblock-frame.qcb")
    for e in events:
        if e.event.name == "complete" and e.event.type == "work" and e.job_data \
                and e.job_data["label"] == "render":
            group = [j for j, d in jobs.items() if d and d["pgrp"] == e.job_data["pgrp"]]
            for j in group:
                assert fired[(e.seq, j)] == 1, (e.event.format(), j)


def test_replay_dry_run_predicts_the_same_firings(simulated, tmp_path):
    _, _, events, firings = simulated
    stream = tmp_path / "events.jsonl"
    with stream.open("w") as fh:
        for e in events:
            fh.write(event_line(e.event, e.job_data) + "\n")
    out = tmp_path / "dry.json"
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "qbcallbacks", "replay", str(EXAMPLES),
                           "--events", str(stream), "--dry-run", "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    out.write_text(done.stdout)
    assert done.returncode == 0, done.stderr
    predicted = Counter((d["seq"], d["job"], d["callback"], d["trigger"])
                        for d in map(json.loads, done.stdout.splitlines()) if d)
    got = Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings)
    assert predicted == got


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_simulate_isolated_mode_is_deterministic(tmp_path):
    code, run = simulate(tmp_path)
    assert code == 0
    store = open_audit(run / "audit.db", readonly=True)
    first = [e.event.format() for e in store.events()]
    store.close()
    code, run2 = simulate(tmp_path / "again")
    store = open_audit(run2 / "audit.db", readonly=True)
    second = [e.event.format() for e in store.events()]
    store.close()
    assert code == 0
    assert Counter(first) == Counter(second)


def test_simulate_exits_non_zero_when_the_engine_loses_a_firing(tmp_path, monkeypatch, capsys):
    from qbcallbacks.dispatch import dispatcher as dispatcher_module

    original = dispatcher_module.MatcherSource.observe
    dropped: list[str] = []

    def lossy(self, event, job):
        found = original(self, event, job)
        if found and not dropped:
            dropped.append(event.format())
            return found[1:]
        return found

    monkeypatch.setattr(dispatcher_module.MatcherSource, "observe", lossy)
    code, _ = simulate(tmp_path, "--mode", "in-process")
    out = capsys.readouterr().out
    assert dropped and code == 1
    assert "1 missing" in out


def test_simulate_qbconf_mail_settings_reach_the_mail(tmp_path):
    conf = tmp_path / "qb.conf"
    conf.write_text(f"supervisor_universal_callback_path = {EXAMPLES}\n"
                    "mail_domain = farm.example\nmail_from = render-admin\n")
    run = tmp_path / "run"
    code = main(["simulate", "--qbconf", str(conf), "--workdir", str(run), "--no-progress",
                 "--seed", "7", "--groups", "1", "--frames", "2", "--fail-rate", "0",
                 "--mode", "in-process"])
    assert code == 0
    box = mailbox.mbox(run / "mail.mbox")
    try:
        senders = {m["From"] for m in box}
    finally:
        box.close()
    assert senders == {"render-admin@farm.example"}


def _run_with_stderr(args: list[str], cwd: Path, *, terminal: bool) -> tuple[str, str]:
    """Run the command with standard output on a pipe and standard error on a pipe or on a
    pseudo-terminal; what each received."""
    import os
    import subprocess
    import sys
    import threading

    script = str(Path(sys.executable).parent / "qbcallbacks")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    if not terminal:
        done = subprocess.run([script, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=300, check=False, env=env)
        assert done.returncode in (0, 1), done.stderr
        return done.stdout, done.stderr
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run([script, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=slave,
                              timeout=300, check=False, env={**env, "TERM": "xterm"})
    finally:
        os.close(slave)
        reader.join(timeout=60)
        os.close(master)
    return done.stdout.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_goes_to_standard_error_and_only_to_a_terminal(tmp_path, terminal):
    events = tmp_path / "events.jsonl"
    events.write_text('{"event": "submit", "type": "job", "job": {"id": 5}}\n'
                      '{"event": "complete", "type": "job", "job": 5}\n')
    for args, verb in (
            (["simulate", str(EXAMPLES), "--groups", "1", "--frames", "2", "--mode",
              "in-process", "--workdir", str(tmp_path / "sim")], "simulating"),
            (["replay", str(EXAMPLES), "--events", str(events), "--execute", "--mode",
              "in-process", "--workdir", str(tmp_path / "replay")], "replaying")):
        out, err = _run_with_stderr(args, tmp_path, terminal=terminal)
        assert "Firings per callback" in out and verb not in out
        assert (verb in err) is terminal
