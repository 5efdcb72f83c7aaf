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


def _firing(i: int, job: int, cb: str = "a.qcb") -> PendingFiring:
    return PendingFiring(event_seq=i, ordinal=0, event=Event(name="complete", type="job", job=job),
                         job=job, callback=cb, directory="/cb", trigger="complete-job-self",
                         language="qcb")


def test_follow_with_limit_tails_by_id_and_shows_outcomes(tmp_path):
    import os
    import selectors
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "audit.db"
    store = open_audit(path)
    store.begin_session()
    ids = store.record_batch([], [_firing(i, i) for i in range(69)])
    for i in ids[:-1]:
        store.complete(i, "ok", exit_code=0, duration=0.1)
    store.flush()
    script = Path(sys.executable).parent / "qbcallbacks"
    with subprocess.Popen([str(script), "history", "--audit", str(path), "--follow",
                           "--limit", "3", "--json-lines", "--interval", "0.05"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        try:
            lines = _read_lines(proc, 3, selectors, os)
            assert [(d["id"], d["status"]) for d in lines] == [
                (ids[-3], "ok"), (ids[-2], "ok"), (ids[-1], "pending")]
            (new,) = store.record_batch([], [_firing(70, 70)])
            later = _read_lines(proc, 1, selectors, os)
            store.complete(ids[-1], "error", exit_code=1)
            store.flush()
            later += _read_lines(proc, 1, selectors, os)
            assert [(d["id"], d["status"]) for d in later] == [
                (new, "pending"), (ids[-1], "error")]
        finally:
            proc.terminate()
            store.close()


def _read_lines(proc, count, selectors, os, deadline=60.0):
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = getattr(proc, "_pending_bytes", b"")
    end = time.monotonic() + deadline
    while buffer.count(b"\n") < count:
        left = end - time.monotonic()
        assert left > 0, buffer
        if selector.select(timeout=left):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, buffer
            buffer += chunk
    selector.close()
    *done, rest = buffer.split(b"\n", count)
    proc._pending_bytes = rest
    return [json.loads(line) for line in done]


def test_each_follow_poll_reads_a_bounded_page(audit, monkeypatch):
    from qbcallbacks.cli import history

    store = open_audit(audit, readonly=True)
    shown = store.query()
    store.close()
    pending = [r.id for r in shown if r.status == "pending"]
    assert pending and len(shown) == 3
    calls = []

    def fetch(**bounds):
        calls.append(bounds)
        if len(calls) > 6:
            raise KeyboardInterrupt
        return []

    monkeypatch.setattr(history.time, "sleep", lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        history._follow(fetch, lambda rows: None, shown, 0.0)
    last = max(r.id for r in shown)
    assert calls[:6] == [{"ids": pending}, {"after_id": last, "limit": history.FOLLOW_PAGE}] * 3


def test_a_tail_reads_by_id_on_every_backend(backend):
    from qbcallbacks.audit.backends import open_audit

    store = open_audit(backend.location())
    try:
        store.begin_session()
        ids = store.record_batch([], [_firing(i, 1 + i % 3) for i in range(10)])
        store.complete(ids[4], "ok", exit_code=0)
        store.flush()
        after = store.query(after_id=ids[6])
        assert [r.id for r in after] == ids[7:]
        page = store.query(after_id=ids[1], limit=2, job=1 + 3 % 3)
        assert [r.id for r in page] == [ids[3], ids[6]]
        again = store.query(ids=[ids[4], ids[8]])
        assert [(r.id, r.status) for r in again] == [(ids[4], "ok"), (ids[8], "pending")]
        assert store.query(ids=[]) == []
    finally:
        store.close()
