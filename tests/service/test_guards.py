"""The service among strangers, through the real `qbcallbacks serve`: tokens and roles, a
supervisor that stops reading, capped connections and bodies, a full disk, file modes."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qbcallbacks.audit.backends import open_audit
from support.service import LineClient, Served, callback_dir, eventually, served, start

TOKEN = "s3cret-token-of-the-site-0123456789"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _event(seq: int, job: int, name: str = "submitted") -> dict[str, Any]:
    return {"seq": seq, "type": "job", "event": name, "job": {"id": job, "name": f"j{job}"}}


def _http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no RSS")


def test_tokens_and_roles_decide_who_is_heard(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    tcp, web = _port(), _port()
    with served(tmp_path, callback_dir(tmp_path), "--listen", f"tcp:127.0.0.1:{tcp}", "--http",
                f"127.0.0.1:{web}", "--token-file", str(tmp_path / "token")) as s:
        where = ("127.0.0.1", tcp)
        for token in (None, "wrong"):  # refused, answered once, and never attached
            c = LineClient(where, producer="farm", token=token)
            assert c.hello["error"]["code"] == -32011
            assert c.rfile.readline() == b""
            c.close()
        admin = LineClient(where, role="admin", token=TOKEN)
        assert admin.request("health")["result"]["supervisor"] is False
        assert "qbcallbacks_events_total" in admin.request("metrics")["result"]["text"]
        sup = LineClient(where, {1: "mine"}, producer="farm", token=TOKEN)
        assert sup.hello["result"]["last_seq"] == 0
        second = LineClient(where, producer="farm", token=TOKEN)
        assert second.hello["error"]["code"] == -32011
        assert "already has a supervisor" in second.hello["error"]["message"]
        second.close()
        assert sup.request("drain")["error"]["code"] == -32011  # a supervisor may not drain
        assert admin.request("event", _event(1, 1))["error"]["code"] == -32011
        # HTTP: the token as a bearer, for events and metrics (health stays open to probes).
        url = f"http://127.0.0.1:{web}"
        batch = json.dumps([_event(1, 5)]).encode()
        assert _http(f"{url}/events?producer=web&epoch=1", batch)[0] == 401
        assert _http(f"{url}/metrics")[0] == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert _http(f"{url}/events?producer=web&epoch=1", batch, bearer)[0] == 200
        status, body, kind = _http(f"{url}/metrics", None, {
            **bearer, "Accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200 and kind.startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")
        assert _http(f"{url}/health")[0] == 200
        # A run that asks goes to the supervisor; the admin's drain is answered, and the
        # admin is never asked anything.
        assert sup.request("event", _event(1, 1, "complete"))["result"] == {"ack": 1}
        sup.serve_questions(until=lambda: (s.workdir / "ran.log").exists())
        assert admin.request("drain")["result"] == {"drained": True}
        assert admin.asked == [] and len(sup.asked) == 1
        assert s.proc.wait(60) == 0
        admin.close()
        sup.close()


def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path: Path) -> None:
    for args in (["--listen", f"tcp:0.0.0.0:{_port()}"],
                 ["--listen", f"unix:{tmp_path / 's'}", "--http", f"0.0.0.0:{_port()}"]):
        out = subprocess.run([sys.executable, "-m", "qbcallbacks", "serve",
                              str(callback_dir(tmp_path)), "--workdir", str(tmp_path / "run"),
                              *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        assert len(out.stderr.strip().splitlines()) == 1 and "--token-file" in out.stderr


def test_a_supervisor_that_stops_reading_is_dropped_and_the_run_times_out(
        tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack, served(
            tmp_path, callback_dir(tmp_path), "--read-timeout", "1", timeout=3.0) as s:
        hello = {"jsonrpc": "2.0", "id": 0, "method": "hello",
                 "params": {"role": "supervisor", "producer": "mute", "epoch": 1}}
        lines = [hello] + [{"jsonrpc": "2.0", "id": i, "method": "event",
                            "params": _event(i, i, "complete" if i == 1 else "submitted")}
                           for i in range(1, 20001)]
        # Made before connecting: a connection silent for the read timeout (1 s) is closed as
        # stalled, which on a loaded machine the making alone can take.
        data = "".join(json.dumps(m) + "\n" for m in lines).encode()
        # Closed whatever happens: a socket left to the collector warns in a later test.
        mute = stack.enter_context(socket.socket(socket.AF_UNIX))
        mute.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        mute.connect(str(s.sock))
        first = data.index(b"\n", data.index(b"\n") + 1) + 1
        mute.sendall(data[:first])  # the hello and the event that fires, at once

        def flood() -> None:  # its acks fill the socket: it never reads one
            with contextlib.suppress(OSError):
                mute.sendall(data[first:])

        threading.Thread(target=flood, daemon=True).start()
        with LineClient(s.sock, role="admin") as admin:
            eventually(lambda: _firings(tmp_path, admin))
            # The supervisor that stopped reading was disconnected, not waited for.
            eventually(lambda: admin.request("health")["result"]["supervisor"] is False)
            assert admin.drain()["result"] == {"drained": True}
        mute.close()
        assert s.proc.wait(60) == 0
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    (firing,) = audit.query()
    audit.close()
    assert firing.status == "timeout"
    assert firing.duration is not None and firing.duration < 3.0 + 1.0


def _firings(tmp_path: Path, admin: LineClient) -> bool:
    """Whether the one firing has finished (health first: the service is alive)."""
    admin.request("health")
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    try:
        return any(f.status != "pending" and f.status != "running" for f in audit.query())
    finally:
        audit.close()


@contextlib.contextmanager
def _many(count: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 1000)), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connections_are_capped_and_stalled_uploads_closed(tmp_path: Path) -> None:
    web = _port()
    with served(tmp_path, callback_dir(tmp_path), "--max-connections", "16", "--http",
                f"127.0.0.1:{web}", "--read-timeout", "1") as s, _many(3000):
        threads, rss = _threads(s.proc.pid), _rss_kib(s.proc.pid)
        held = []
        try:
            for _ in range(3000):
                c = socket.socket(socket.AF_UNIX)
                c.connect(str(s.sock))
                held.append(c)
            assert _threads(s.proc.pid) <= threads + 16 + 2
            refused = 0
            for c in held[100:]:  # past the cap: one error line, then closed
                c.settimeout(30)
                line = _line(c)
                refused += json.loads(line)["error"]["code"] == -32012 if line else 0
            assert refused >= 2900 - 16
        finally:
            for c in held:
                c.close()
        assert _rss_kib(s.proc.pid) < rss + 64 * 1024
        _http_capped(s, web, threads)
        _stalled_uploads(s, web, threads)
        _chunked(s, web)


def _http_capped(s: Served, web: int, threads: int) -> None:
    """HTTP connections past the cap are answered 503 and closed, not given a thread."""
    held = [socket.create_connection(("127.0.0.1", web)) for _ in range(200)]
    try:
        assert _threads(s.proc.pid) <= threads + 16 + 2
        answers = []
        for c in held:
            c.settimeout(30)
            answers.append(_line(c))
        assert sum(a.startswith(b"HTTP/1.1 503 ") for a in answers) >= 50
    finally:
        for c in held:
            c.close()


def _stalled_uploads(s: Served, web: int, threads: int) -> None:
    """500 uploads that announce a body and send one byte: the cap refuses most at once, the
    rest are closed after the read timeout; none holds a thread for longer."""
    stalled = []
    for _ in range(500):
        c = socket.create_connection(("127.0.0.1", web))
        c.sendall(b"POST /events?producer=slow&epoch=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 1000000\r\n\r\n[")
        stalled.append(c)
    assert _threads(s.proc.pid) <= threads + 16 + 2
    for c in stalled:
        c.settimeout(60)
        with contextlib.suppress(ConnectionResetError):
            while c.recv(65536):
                pass  # closed by the service: recv returns b""
        c.close()
    with LineClient(s.sock, role="admin") as admin:
        health = admin.request("health")["result"]
    assert health["ok"] is True and "slow" not in health["producers"]


def _line(c: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while not data.endswith(b"\n") and (chunk := c.recv(4096)):
            data += chunk
    return data


def _chunked(s: Served, web: int) -> None:
    """A chunked body (even with a Content-Length) is refused and the connection closed:
    what it carries is never read as a request of its own."""
    smuggled = (b"POST /events?producer=sneak&epoch=1 HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 2\r\n\r\n[]")
    body = b"0\r\n\r\n" + smuggled
    with socket.create_connection(("127.0.0.1", web)) as c:
        c.sendall(b"POST /events?producer=web&epoch=1 HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\nContent-Length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body)
        c.settimeout(30)
        answer = b""
        while chunk := c.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 411 ") and answer.count(b"HTTP/1.1") == 1
    with LineClient(s.sock, role="admin") as admin:
        assert "sneak" not in admin.request("health")["result"]["producers"]


def test_a_start_on_a_full_disk_comes_up_unhealthy_and_takes_events_once_there_is_room(
        tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(disk)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot mount a small tmpfs here: {exc}")
    callbacks = callback_dir(tmp_path, asking=False)
    try:
        s = start(disk, callbacks)
        with LineClient(s.sock) as c:
            assert c.request("event", _event(1, 1))["result"] == {"ack": 1}
        assert s.stop(signal.SIGKILL) == -signal.SIGKILL
        with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * (1 << 16))
        with served(disk, callbacks) as s, LineClient(s.sock) as c:
            health = c.request("health")["result"]
            assert health["ok"] is False and "No space left" in health["problem"]
            assert health["since"] is not None
            refused = c.request("event", _event(2, 2))["error"]
            assert refused["code"] == -32002
            (disk / "filler").unlink()
            assert c.request("event", _event(2, 2))["result"] == {"ack": 2}
            assert c.request("health")["result"]["ok"] is True
            assert c.drain()["result"] == {"drained": True}
            assert s.proc.wait(60) == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_files_and_the_socket_have_their_modes_whatever_the_umask(
        tmp_path: Path, umask: int) -> None:
    for group, files in ((None, 0o600), ("0", 0o640)):
        where = tmp_path / str(group)
        where.mkdir()
        extra = ("--socket-group", group) if group else ()
        (where / "audit.db").touch(mode=0o666)  # a trail left world-readable is narrowed
        os.chmod(where / "audit.db", 0o666)
        callbacks = callback_dir(where, asking=False)
        with served(where, callbacks, *extra, umask=umask) as s:
            with LineClient(s.sock) as c:
                assert c.request("event", _event(1, 1, "complete"))["result"] == {"ack": 1}
                eventually(lambda: (s.workdir / "ran.log").exists())
            assert s.sock.stat().st_mode & 0o777 == 0o660
            # The callbacks keep the umask the service was started with.
            assert (s.workdir / "ran.log").stat().st_mode & 0o777 == 0o666 & ~umask
            made = [where / "audit.db", where / "audit.db-wal",
                    *(where / "audit.db.events").glob("*.log")]
            assert {p.name: p.stat().st_mode & 0o777 for p in made} == {
                p.name: files for p in made}
            if group:
                assert s.sock.stat().st_gid == 0


@pytest.mark.parametrize("how", ["sighup", "watch"])
def test_sighup_and_watch_reload_the_rules(tmp_path: Path, how: str) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    extra = ("--watch",) if how == "watch" else ()
    with served(tmp_path, callbacks, *extra) as s, LineClient(s.sock) as c:
        assert c.request("event", _event(1, 1))["result"] == {"ack": 1}  # fires nothing
        (callbacks / "callbacks.conf").write_text("ran.py = submitted-job-self\n")
        if how == "sighup":
            s.proc.send_signal(signal.SIGHUP)
        seq = [1]

        def fired() -> bool:  # one more submitted event each time, until the new rule runs
            seq[0] += 1
            assert c.request("event", _event(seq[0], seq[0]))["result"] == {"ack": seq[0]}
            return (s.workdir / "ran.log").exists()

        eventually(fired)
        assert s.proc.poll() is None  # reloaded, not stopped
        assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
