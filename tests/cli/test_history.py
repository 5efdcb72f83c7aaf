from __future__ import annotations

import json
import time

import click
import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.store import PendingFiring
from qbcallbacks.cli import main
from qbcallbacks.cli.history import parse_time
from qbcallbacks.model.events import Event


@pytest.fixture
def audit(tmp_path):
    path = tmp_path / "audit.db"
    store = open_audit(path)
    store.begin_session()
    firings = [
        PendingFiring(event_seq=i, ordinal=0, event=Event(name="complete", type="job", job=job),
                      job=job, callback=cb, directory="/cb", trigger="complete-job-self",
                      language="qcb")
        for i, (job, cb) in enumerate([(1, "a.qcb"), (2, "a.qcb"), (2, "b.py")])]
    ids = store.record_batch([], firings)
    store.complete(ids[0], "ok", exit_code=0, output="fine\n", duration=0.5)
    store.complete(ids[1], "error", exit_code=1, error="boom")
    store.end_session()
    store.close()
    return path


def run(capsys, *args: str):
    code = main(["history", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_text_and_filters(audit, capsys):
    code, out, err = run(capsys, "--audit", str(audit))
    assert code == 0 and len(out.splitlines()) == 4 and "3 firing(s), session 1" in err
    assert out.splitlines()[0].split()[:4] == ["id", "queued", "job", "callback"]
    _, out, _ = run(capsys, "--audit", str(audit), "--job", "2")
    assert len(out.splitlines()) == 3
    _, out, _ = run(capsys, "--audit", str(audit), "--status", "error", "--output")
    assert "complete-job-2" in out and "| boom" in out
    _, out, _ = run(capsys, "--audit", str(audit), "--callback", "b.py", "--status", "pending")
    assert "b.py" in out and "pending" in out
    _, out, _ = run(capsys, "--audit", str(audit), "--limit", "1")
    assert len(out.splitlines()) == 2 and "b.py" in out.splitlines()[1]  # the newest


def test_json_and_time_filters(audit, capsys):
    _, out, _ = run(capsys, "--audit", str(audit), "--format", "json", "--since", "1h")
    data = json.loads(out)
    assert [d["callback"] for d in data] == ["a.qcb", "a.qcb", "b.py"]
    assert data[0]["status"] == "ok" and data[0]["output"] == "fine\n"
    assert data[0]["event"] == "complete-job-1" and data[0]["event_type"] == "job"
    _, out, _ = run(capsys, "--audit", str(audit), "--format", "json", "--until", "1h")
    assert json.loads(out) == []


def test_missing_database_is_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "--audit", str(tmp_path / "none.db"))
    assert code == 2 and "no audit database" in err


def test_parse_time():
    now = 1_000_000.0
    assert parse_time("15m", now) == now - 900
    assert parse_time("2d", now) == now - 172800
    assert parse_time("12345.5", now) == 12345.5
    assert abs(parse_time("2024-05-01T12:00:00+00:00") - 1714564800) < 1e-6
    assert parse_time("2024-05-01") < time.time()
    with pytest.raises(click.BadParameter):
        parse_time("yesterday")
