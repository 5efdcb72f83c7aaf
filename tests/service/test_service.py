"""`qbcallbacks serve` as a real process: what an ack promises survives kill -9, a re-sent
`seq` never fires twice (across restarts too), SIGTERM drains, protocol errors are answered,
a supervisor that is away makes the runs that ask it wait or fail, and the HTTP face."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from support.ports import free_port
from support.service import LineClient, callback_dir, eventually, ran_lines, served, start


def test_kill_9_after_the_acks_loses_nothing_and_runs_each_once(tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path)  # its runs wait for the supervisor's answer
    s = start(tmp_path, callbacks)
    silent = LineClient(s.sock, jobs=None)  # acks, but never answers a question
    assert [silent.event(i, i)["result"] for i in range(1, 11)] == [
        {"ack": i} for i in range(1, 11)]
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    silent.close()
    assert ran_lines(s.workdir) == []
    with served(tmp_path, callbacks) as again:
        with LineClient(again.sock, jobs={i: f"shot{i}" for i in range(1, 11)}) as client:
            assert client.request("health")["result"]["last_seq"] == 10
            assert client.drain()["result"] == {"drained": True}
        assert again.proc.wait(60) == 0
    assert sorted(ran_lines(s.workdir)) == sorted(f"shot{i} None" for i in range(1, 11))


def test_a_re_sent_seq_is_acked_and_never_fires_twice_even_after_a_restart(
        tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    with served(tmp_path, callbacks) as s, LineClient(s.sock) as c:
        for i in (1, 2, 3):
            assert c.event(i, i)["result"] == {"ack": i}
        assert c.event(2, 2)["result"] == {"ack": 2, "duplicate": True}
        assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    with served(tmp_path, callbacks) as s, LineClient(s.sock) as c:
        assert c.event(3, 3)["result"] == {"ack": 3, "duplicate": True}
        assert c.event(1, 1)["result"] == {"ack": 1, "duplicate": True}
        assert c.event(7, 4)["result"] == {"ack": 7}  # gaps are allowed
        assert c.request("health")["result"]["last_seq"] == 7
        assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    assert sorted(ran_lines(s.workdir)) == ["job 1", "job 2", "job 3", "job 4"]


def test_sigterm_drains_what_was_accepted_and_exits_0(tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, asking=False, sleep=0.3)
    s = start(tmp_path, callbacks)
    c = LineClient(s.sock)
    for i in range(1, 7):
        assert c.event(i, i)["result"] == {"ack": i}
    assert s.stop(signal.SIGTERM) == 0
    c.close()
    assert sorted(ran_lines(s.workdir)) == [f"job {i}" for i in range(1, 7)]
    assert "drained and stopped" in s.stderr()
    assert not s.sock.exists()
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    assert {f.status for f in audit.query()} == {"ok"}
    audit.close()


def test_protocol_errors_are_answered_and_the_connection_goes_on(tmp_path: Path) -> None:
    with served(tmp_path, callback_dir(tmp_path, asking=False)) as s:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(s.sock))
        rfile = sock.makefile("rb")

        def ask(line: bytes) -> dict[str, object]:
            sock.sendall(line + b"\n")
            return dict(json.loads(rfile.readline()))

        # Before hello: one answer naming hello, then the connection is closed.
        refused = ask(b'{"jsonrpc":"2.0","id":1,"method":"health","params":{}}')
        assert refused["error"]["code"] == -32010  # type: ignore[index]
        assert "hello" in refused["error"]["message"]  # type: ignore[index]
        assert rfile.readline() == b""
        rfile.close()
        sock.close()
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(s.sock))
        rfile = sock.makefile("rb")
        assert ask(b'{"jsonrpc":"2.0","id":0,"method":"hello","params":{"role":"adapter",'
                   b'"producer":"p","epoch":1}}')["result"]["last_seq"] == 0  # type: ignore[index]
        assert ask(b"{not json")["error"]["code"] == -32700  # type: ignore[index]
        assert ask(b"[1, 2]")["error"]["code"] == -32600  # type: ignore[index]
        assert ask(b'{"jsonrpc": "1.0", "id": 1, "method": "health"}')["error"][  # type: ignore[index]
            "code"] == -32600
        assert ask(b'{"jsonrpc": "2.0", "id": 2, "method": "nope"}')["error"][  # type: ignore[index]
            "code"] == -32601
        for bad_seq in (b"0", b"true", b'"1"', b"9223372036854775808"):
            answer = ask(b'{"jsonrpc":"2.0","id":3,"method":"event","params":{"seq":' + bad_seq
                         + b',"type":"job","event":"complete","job":1}}')
            assert answer["error"]["code"] == -32602, bad_seq  # type: ignore[index]
        answer = ask(b'{"jsonrpc":"2.0","id":4,"method":"event","params":{"seq":1,"type":"job",'
                     b'"event":"complete","job":{"id":1,"colour":"red"}}}')
        assert answer["error"]["code"] == -32602  # type: ignore[index]
        assert "colour" in answer["error"]["message"]  # type: ignore[index]
        # Values the trail could not store are refused as parameters, not taken and lost.
        for job in (b'{"id":99999999999999999999999}', b'{"id":1,"name":"\\ud800"}'):
            answer = ask(b'{"jsonrpc":"2.0","id":4,"method":"event","params":{"seq":1,'
                         b'"type":"job","event":"complete","job":' + job + b'}}')
            assert answer["error"]["code"] == -32602, job  # type: ignore[index]
        # A refused event was not journaled: the same seq is taken afterwards.
        answer = ask(b'{"jsonrpc":"2.0","id":5,"method":"event","params":{"seq":1,"type":"job",'
                     b'"event":"complete","job":{"id":1}}}')
        assert answer == {"jsonrpc": "2.0", "id": 5, "result": {"ack": 1}}
        # A line over the limit is refused and ends the connection (it cannot be framed).
        sock.sendall(b"x" * (1 << 20 | 1) + b"\n")
        assert json.loads(rfile.readline())["error"]["code"] == -32600
        with contextlib.suppress(ConnectionResetError):  # unread bytes may reset it
            assert rfile.readline() == b""
        rfile.close()
        sock.close()
        with LineClient(s.sock) as c:
            assert c.request("health")["result"]["ok"] is True


def test_a_supervisor_that_comes_back_in_time_answers_and_one_that_does_not_fails_the_run(
        tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, gated=True)
    with served(tmp_path, callbacks, timeout=5.0) as s, contextlib.ExitStack() as clients:
        def alone() -> bool:
            return bool(probe.request("health")["result"]["supervisor"] is False)

        c = LineClient(s.sock, jobs=None)
        assert c.event(1, 1)["result"] == {"ack": 1}
        c.close()
        probe = clients.enter_context(LineClient(s.sock, jobs={1: "probe"}, role="admin"))
        eventually(alone)
        (s.workdir / "go-1").touch()  # the run asks with nobody to answer: the question waits
        eventually((s.workdir / "asking-1").exists)
        back = clients.enter_context(LineClient(s.sock, jobs={1: "back"}))
        back.serve_questions(until=lambda: ran_lines(s.workdir))
        assert ran_lines(s.workdir) == ["back None"]
        assert probe.request("health")["result"]["supervisor"] is True
        assert probe.asked == []  # an admin is never asked anything
        back.close()
        eventually(alone)
        late = LineClient(s.sock, jobs=None)
        assert late.event(2, 2)["result"] == {"ack": 2}
        late.close()
        eventually(alone)
        (s.workdir / "go-2").touch()  # and nobody answers within the run timeout
        with LineClient(s.sock, jobs=None) as final:
            assert final.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    by_job = {f.job: f for f in audit.query()}
    audit.close()
    assert by_job[1].status == "ok"
    # The question waits as long as the run may take: the run ends as a run past its deadline.
    assert by_job[2].status == "timeout"


def _post(url: str, body: object) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_batch_health_and_metrics(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    events = f"{base}/events?producer=web&epoch=1"
    with served(tmp_path, callback_dir(tmp_path, asking=False), "--http",
                f"127.0.0.1:{port}") as s:
        ev = [{"seq": i, "type": "job", "event": "complete", "job": {"id": i}} for i in (1, 2)]
        status, body = _post(events, [*ev, {"seq": 3, "type": "jobs"}, ev[0]])
        assert status == 400
        assert body["acks"] == [{"ack": 1}, {"ack": 2}]
        assert body["error"]["seq"] == 3 and body["error"]["code"] == -32602  # type: ignore[index]
        assert _post(events, ev[:1]) == (200, {"acks": [{"ack": 1, "duplicate": True}]})
        assert _post(events, {"seq": 1})[0] == 400
        with urllib.request.urlopen(f"{base}/health", timeout=30) as resp:
            health = json.loads(resp.read())
        assert resp.status == 200 and health["ok"] is True and health["last_seq"] == 2
        # The listeners close soon after a drain answers, so the counts are read before it,
        # once both runs have ended.
        metrics = ""
        deadline = time.monotonic() + 60
        ended = ('qbcallbacks_firings_total{status="ok"} 2.0',
                 "qbcallbacks_run_duration_seconds_count 2.0")
        while not all(line in metrics for line in ended):
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
            with urllib.request.urlopen(f"{base}/metrics", timeout=30) as resp:
                metrics = resp.read().decode()
        with LineClient(s.sock) as c:
            c.serve_questions(0.2)
            assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    assert 'qbcallbacks_events_total{outcome="journaled"} 2.0' in metrics
    assert 'qbcallbacks_events_total{outcome="duplicate"} 1.0' in metrics
    assert 'qbcallbacks_events_total{outcome="rejected"} 1.0' in metrics
    assert 'qbcallbacks_firings_total{status="ok"} 2.0' in metrics
    assert "qbcallbacks_run_duration_seconds_count 2.0" in metrics
    assert "qbcallbacks_queue_depth 0.0" in metrics


def test_tcp_listen_and_listen_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    callbacks = callback_dir(tmp_path, asking=False)
    port = free_port()

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qbcallbacks", "serve", str(callbacks),
                               "--workdir", str(tmp_path / "run"), *args],
                              capture_output=True, text=True, timeout=60)

    for listen, why in (("udp:1", "is not unix:SOCKET or tcp:HOST:PORT"),
                        ("tcp:127.0.0.1:99999", "is not unix:SOCKET"),
                        (f"unix:{callbacks / 'callbacks.conf'}", "exists and is not a socket")):
        out = serve("--listen", listen)
        assert out.returncode == 2 and why in out.stderr, (listen, out.stderr)
    assert (callbacks / "callbacks.conf").exists()  # never removed to make room for a socket

    proc = subprocess.Popen([sys.executable, "-m", "qbcallbacks", "serve", str(callbacks),
                             "--listen", f"tcp:127.0.0.1:{port}", "--workdir",
                             str(tmp_path / "run"), "--audit", str(tmp_path / "tcp.db")],
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    try:
        assert b"listening on tcp:127.0.0.1" in proc.stderr.readline()
        with socket.create_connection(("127.0.0.1", port)) as conn:
            rfile = conn.makefile("rb")
            conn.sendall(b'{"jsonrpc":"2.0","id":0,"method":"hello","params":{"role":"adapter",'
                         b'"producer":"tcp","epoch":1}}\n')
            assert json.loads(rfile.readline())["result"]["last_seq"] == 0
            conn.sendall(b'{"jsonrpc":"2.0","id":1,"method":"event","params":{"seq":1,'
                         b'"type":"job","event":"complete","job":{"id":1}}}\n')
            assert json.loads(rfile.readline())["result"] == {"ack": 1}
            rfile.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert ran_lines(tmp_path / "run") == ["job 1"]


def test_a_reload_over_budget_keeps_the_rules_and_the_acks_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBCALLBACKS_MAX_CONFIG_BYTES", str(16 << 20))
    callbacks = callback_dir(tmp_path, asking=False)
    with served(tmp_path, callbacks, "--reload-budget", "0.2") as s, LineClient(s.sock) as c:
        assert c.event(1, 1, name="running")["result"] == {"ack": 1}
        (callbacks / "other.py").write_text("pass\n")
        (callbacks / "callbacks.conf").write_text("".join(
            f"other.py = complete-work-self-{i}\n" for i in range(80_000)))
        answer: list[dict[str, object]] = []

        def reload() -> None:
            with LineClient(s.sock, role="admin") as admin:
                answer.append(admin.request("reload"))

        reloading = threading.Thread(target=reload)
        reloading.start()
        seq, during = 1, 0
        while reloading.is_alive():
            seq += 1
            assert c.event(seq, 2, name="running")["result"] == {"ack": seq}
            during += reloading.is_alive()  # acked while the reload was still running
        reloading.join()
        assert [d["code"] for d in answer[0]["result"]["diagnostics"]] == ["QCB150"]
        assert during > 0
        seq += 1
        assert c.event(seq, 42)["result"] == {"ack": seq}  # the old rule still fires
        assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    assert ran_lines(s.workdir) == ["job 42"]
    store = open_audit(tmp_path / "audit.db")
    try:
        assert len(store.events()) == seq
    finally:
        store.close()
