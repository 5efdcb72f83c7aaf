"""Service benchmark: events per second and ack latency through the socket, journal on.

A `qbcallbacks serve` process listens on a Unix socket; this process is the supervisor (it says
`hello` as the supervisor of one producer). Two figures through the socket: throughput with
pipelined events (up to `--window` unacknowledged at once), and the latency of one event at a
time, from writing its line to reading its ack (p50, p99). The baselines, in the same run: the
in-process `Dispatcher.emit` on the same kind of trail and journal; and, with authentication
on (`--token-file`, the client's `hello` carrying the token), through the Unix socket and
through loopback TCP, an asyncio JSON-lines server in its own process that parses each line
and writes an ack, driven by the same client over the same kind of socket (its pipelined rate
and its one-at-a-time p99). The callbacks fire on an event name the stream never sends, so
what is measured is intake (read, check, journal, ack), not callback runs.

    .venv/bin/python bench/service.py                 # 20,000 events, 2,000 latency samples
    .venv/bin/python bench/service.py --events 100000
    .venv/bin/python bench/service.py --repeat 5      # the Unix pair only, 5 times: median, range

The goals: at least 5,000 events/s and an ack p99 under 2 ms; through the Unix socket with
authentication on, at least half the echo server's pipelined rate and an ack p99 at most twice
its p99.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from qbcallbacks.dispatch.dispatcher import Dispatcher
from qbcallbacks.model.events import Event, Job

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

#: (events, latency samples) per bench/run mode.
SIZES = {"smoke": (500, 100), "quick": (5_000, 500), "full": (20_000, 2_000)}


class _Null:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _callbacks(root: Path, name: str = "") -> Path:
    d = root / f"callbacks{name}"
    d.mkdir()
    (d / "callbacks.conf").write_text("never.py = migrated-job-self\n")
    (d / "never.py").write_text("print('never')\n")
    return d


def _params(seq: int) -> dict[str, Any]:
    job: Any = {"id": seq % 1000 + 1, "name": f"shot{seq % 1000}"} if seq <= 1000 else (
        seq % 1000 + 1)
    return {"seq": seq, "type": "work", "event": "complete", "job": job, "extra": str(seq)}


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def in_process(root: Path, events: int) -> tuple[float, list[float]]:
    d = Dispatcher([str(_callbacks(root))], _Null(), audit=root / "audit.db")  # type: ignore[arg-type]
    jobs = {i: Job(id=i, name=f"shot{i - 1}") for i in range(1, 1001)}
    lat: list[float] = []
    start = time.perf_counter()
    for seq in range(1, events + 1):
        p = _params(seq)
        job_id = p["job"]["id"] if isinstance(p["job"], dict) else p["job"]
        t = time.perf_counter()
        d.emit(Event(name="complete", type="work", job=job_id, extra=p["extra"]),
               jobs[job_id] if seq <= 1000 else None, key=seq)
        lat.append(time.perf_counter() - t)
    rate = events / (time.perf_counter() - start)
    d.close()
    return rate, lat


#: The baseline: an asyncio server that acks each JSON line as the service would, no more.
ECHO = """
import asyncio, json, sys

async def serve(reader, writer):
    while line := await reader.readline():
        msg = json.loads(line)
        seq = msg["params"].get("seq", 0) if msg.get("method") == "event" else 0
        result = {"ack": seq} if msg.get("method") == "event" else {"last_seq": 0}
        writer.write((json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result},
                                 separators=(",", ":")) + "\\n").encode())
        await writer.drain()

async def main():
    if len(sys.argv) > 1:  # a Unix socket's path
        server = await asyncio.start_unix_server(serve, sys.argv[1])
        print(0, flush=True)
    else:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""
TOKEN = "bench-token-0123456789abcdef"


class Figures(NamedTuple):
    """A pipelined rate (events/s), the server's CPU time per pipelined event (s: what a
    loaded machine changes least) and one-at-a-time latencies (s)."""

    rate: float
    cpu: float
    lat: list[float]


def _cpu(pid: int) -> float:
    """The CPU seconds (user and system) process `pid` has used (Linux; else NaN)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(client: _Client, pid: int, events: int, samples: int, window: int) -> Figures:
    client.one_at_a_time(1, 200)  # warm up
    used = _cpu(pid)
    rate = client.pipelined(201, events, window)
    used = (_cpu(pid) - used) / events
    return Figures(rate, used, client.one_at_a_time(201 + events, samples))


class _Client:
    def __init__(self, where: Path | tuple[str, int], token: str | None = None) -> None:
        if isinstance(where, tuple):
            self.sock = socket.create_connection(where)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(where))
        self.rfile = self.sock.makefile("rb", buffering=1 << 16)
        hello: dict[str, Any] = {"role": "supervisor", "producer": "bench", "epoch": 1}
        if token is not None:
            hello["token"] = token
        self.sock.sendall((json.dumps({"jsonrpc": "2.0", "id": 0, "method": "hello",
                                       "params": hello}) + "\n").encode())
        said = json.loads(self.rfile.readline())
        assert "result" in said, said

    def line(self, key: int, params: dict[str, Any]) -> bytes:
        return (json.dumps({"jsonrpc": "2.0", "id": key, "method": "event", "params": params},
                           separators=(",", ":")) + "\n").encode()

    def pipelined(self, first: int, count: int, window: int) -> float:
        room = threading.Semaphore(window)
        done = threading.Event()

        def read() -> None:
            for _ in range(count):
                msg = json.loads(self.rfile.readline())
                assert "result" in msg, msg
                room.release()
            done.set()

        reader = threading.Thread(target=read)
        start = time.perf_counter()
        reader.start()
        batch: list[bytes] = []
        for seq in range(first, first + count):
            room.acquire()
            batch.append(self.line(seq, _params(seq)))
            if len(batch) >= 32 or seq == first + count - 1:
                self.sock.sendall(b"".join(batch))
                batch = []
        done.wait()
        reader.join()
        return count / (time.perf_counter() - start)

    def one_at_a_time(self, first: int, count: int) -> list[float]:
        lat = []
        for seq in range(first, first + count):
            data = self.line(seq, _params(seq))
            t = time.perf_counter()
            self.sock.sendall(data)
            msg = json.loads(self.rfile.readline())
            lat.append(time.perf_counter() - t)
            assert msg["result"]["ack"] == seq, msg
        return lat


def through_socket(root: Path, events: int, samples: int,
                   window: int) -> tuple[float, list[float]]:
    sock = root / "svc.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qbcallbacks", "serve", str(_callbacks(root)), "--listen",
         f"unix:{sock}", "--workdir", str(root / "run"), "--audit", str(root / "audit.db")],
        stderr=subprocess.PIPE)
    assert proc.stderr is not None
    assert b"listening" in proc.stderr.readline()
    try:
        client = _Client(sock)
        client.one_at_a_time(1, 200)  # warm up
        rate = client.pipelined(201, events, window)
        lat = client.one_at_a_time(201 + events, samples)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        proc.stderr.close()
    return rate, lat


def _listening(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stderr is not None
    assert b"listening" in proc.stderr.readline()


def authenticated(root: Path, events: int, samples: int, window: int,
                  kind: str) -> tuple[Figures, Figures]:
    """The pipelined rate and one-at-a-time latencies with a token (`kind`: through the Unix
    socket or loopback TCP), and the echo server's through the same kind of socket."""
    (root / "token").write_text(TOKEN)
    root.mkdir(exist_ok=True)
    where: Path | tuple[str, int]
    if kind == "unix":
        where, listen = root / f"auth-{kind}.sock", f"unix:{root / f'auth-{kind}.sock'}"
    else:
        port = _free_port()
        where, listen = ("127.0.0.1", port), f"tcp:127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qbcallbacks", "serve", str(_callbacks(root, kind)), "--listen",
         listen, "--token-file", str(root / "token"), "--workdir",
         str(root / f"run-{kind}"), "--audit", str(root / f"audit-{kind}.db")],
        stderr=subprocess.PIPE)
    try:
        _listening(proc)
        ours = _measure(_Client(where, TOKEN), proc.pid, events, samples, window)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        assert proc.stderr is not None
        proc.stderr.close()
    echo_at = root / f"echo-{kind}.sock"
    echo = subprocess.Popen([sys.executable, "-c", ECHO] + ([str(echo_at)] if kind == "unix"
                                                            else []), stdout=subprocess.PIPE)
    try:
        assert echo.stdout is not None
        port = int(echo.stdout.readline())
        base = _measure(_Client(echo_at if kind == "unix" else ("127.0.0.1", port), TOKEN),
                        echo.pid, events, samples, window)
    finally:
        echo.kill()
        echo.wait()
        assert echo.stdout is not None
        echo.stdout.close()
    return ours, base


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=None, help="(20,000)")
    ap.add_argument("--samples", type=int, default=None, help="(2,000)")
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=0, help="run only the Unix socket with a "
                    "token against the echo server, this many times, and print each figure's "
                    "median and range")
    add_rows_option(ap)
    args = ap.parse_args()
    events, samples = SIZES[args.rows or "full"]
    args.events, args.samples = args.events or events, args.samples or samples
    if args.repeat:
        repeated(args)
        return
    with report_to_stderr(args.rows is not None):
        rows = measure(args)
    if args.rows:
        emit(rows)


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Print the report; rows: throughput and ack p99 through the socket, and with a token
    against the echo server."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            tempfile.TemporaryDirectory() as c:
        base_rate, base_lat = in_process(Path(a), args.events)
        rate, lat = through_socket(Path(b), args.events, args.samples, args.window)
        unix = authenticated(Path(c), args.events, args.samples, args.window, "unix")
        tcp = authenticated(Path(c), args.events, args.samples, args.window, "tcp")
    ms = 1000.0
    print(f"cores: {os.cpu_count()}, events: {args.events}, window: {args.window}, "
          f"load: {os.getloadavg()[0]:.1f}")
    print(f"in-process emit : {base_rate:10,.0f} events/s   emit p50 "
          f"{statistics.median(base_lat) * ms:.3f} ms  p99 {_pct(base_lat, 0.99) * ms:.3f} ms")
    print(f"through socket  : {rate:10,.0f} events/s   ack  p50 "
          f"{statistics.median(lat) * ms:.3f} ms  p99 {_pct(lat, 0.99) * ms:.3f} ms")
    print(f"socket / in-process throughput: {rate / base_rate:.2f}")
    for kind, pair in (("Unix", unix), ("TCP", tcp)):
        _print_pair(kind, *pair)
    p99 = _pct(lat, 0.99)
    goal = rate >= 5000 and p99 < 0.002
    print(f"goal (>= 5,000 events/s, ack p99 < 2 ms): {'met' if goal else 'NOT met'}")
    (ours, echo), (tcp_ours, tcp_echo) = unix, tcp
    half = ours.rate >= 0.5 * echo.rate
    print(f"goal (Unix socket with a token >= 0.5 x the echo server's rate): "
          f"{'met' if half else 'NOT met'}")
    p99_ratio = _pct(ours.lat, 0.99) / _pct(echo.lat, 0.99)
    print(f"goal (Unix socket with a token, ack p99 <= 2 x the echo server's): "
          f"{'met' if p99_ratio <= 2 else 'NOT met'}")
    return [row(f"serve, Unix socket, window {args.window}", f"{rate:,.0f} events/s",
                f"{base_rate:,.0f} events/s in-process emit", rate / base_rate,
                ">= 5,000 events/s", rate >= 5000),
            row("serve, one event at a time, ack p99", f"{p99 * ms:.2f} ms",
                f"{_pct(base_lat, 0.99) * ms:.3f} ms in-process emit p99", None, "< 2 ms",
                p99 < 0.002),
            row(f"serve, Unix socket with a token, window {args.window}",
                f"{ours.rate:,.0f} events/s", f"{echo.rate:,.0f} events/s asyncio echo server",
                ours.rate / echo.rate, ">= 0.5x", half),
            row("serve, Unix socket with a token, one at a time, ack p99",
                f"{_pct(ours.lat, 0.99) * ms:.2f} ms",
                f"{_pct(echo.lat, 0.99) * ms:.2f} ms asyncio echo server", p99_ratio, "<= 2x",
                p99_ratio <= 2),
            row(f"serve, loopback TCP with a token, window {args.window}",
                f"{tcp_ours.rate:,.0f} events/s",
                f"{tcp_echo.rate:,.0f} events/s asyncio echo server",
                tcp_ours.rate / tcp_echo.rate, ">= 0.5x", tcp_ours.rate >= 0.5 * tcp_echo.rate)]


def repeated(args: argparse.Namespace) -> None:
    """The Unix socket with a token against the echo server, `args.repeat` times (the machine
    is shared: one run says little): each figure's median and range."""
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as c:
            ours, echo = authenticated(Path(c), args.events, args.samples, args.window, "unix")
        _print_pair("Unix", ours, echo)
        runs.append({"rate ratio": ours.rate / echo.rate,
                     "p99 ratio": _pct(ours.lat, 0.99) / _pct(echo.lat, 0.99),
                     "p99.9 ratio": _pct(ours.lat, 0.999) / _pct(echo.lat, 0.999),
                     "server CPU per event (us)": ours.cpu * 1e6,
                     "echo CPU per event (us)": echo.cpu * 1e6})
    print(f"{args.repeat} runs, {args.events} events, window {args.window}, "
          f"load {os.getloadavg()[0]:.1f}:")
    for what in runs[0]:
        values = [run[what] for run in runs]
        print(f"  {what}: median {statistics.median(values):.2f}, range {min(values):.2f}"
              f"-{max(values):.2f}")


def _print_pair(kind: str, ours: Figures, echo: Figures) -> None:
    ms = 1000.0
    p99, echo_p99 = _pct(ours.lat, 0.99), _pct(echo.lat, 0.99)
    print(f"{kind} with a token: {ours.rate:10,.0f} events/s pipelined, ack p99 "
          f"{p99 * ms:.3f} ms; asyncio echo server {echo.rate:10,.0f} events/s, p99 "
          f"{echo_p99 * ms:.3f} ms; rate ratio {ours.rate / echo.rate:.2f}, p99 ratio "
          f"{p99 / echo_p99:.2f}")
    print(f"{kind} with a token: ack p50 {statistics.median(ours.lat) * ms:.3f} ms, p99.9 "
          f"{_pct(ours.lat, 0.999) * ms:.3f} ms; echo p50 {statistics.median(echo.lat) * ms:.3f}"
          f" ms, p99.9 {_pct(echo.lat, 0.999) * ms:.3f} ms")
    print(f"{kind} with a token: server CPU per event {ours.cpu * 1e6:.1f} us, echo server "
          f"{echo.cpu * 1e6:.1f} us; echo / ours "
          f"{echo.cpu / ours.cpu if ours.cpu else float('nan'):.2f}")


if __name__ == "__main__":
    main()
