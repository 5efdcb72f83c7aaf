"""A private RabbitMQ broker and real Celery workers for the Celery executor's tests.

`rabbitmq_broker` (session scope) starts Debian's `rabbitmq-server` on free ports with its
own node name, cookie, data and epmd, and stops all of it (epmd too) at the end; without the
package the tests that need it skip, saying why (`.ci/run` installs it). `CeleryWorkers`
starts `celery -A qbcallbacks.celery worker` processes, each in its own working directory
and process group, so a test can kill one whole worker as a lost host would die.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.ports import free_port

SBIN = "/usr/lib/rabbitmq/bin"
SERVER, CTL = f"{SBIN}/rabbitmq-server", f"{SBIN}/rabbitmqctl"
CELERY = str(Path(sys.executable).parent / "celery")


def wait_for(check: Callable[[], object], what: str, limit: float = 60.0) -> None:
    """Poll `check` until it is true; fail the test after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _broker_env(root: str, node: str, port: int) -> dict[str, str]:
    (Path(root) / "plugins").write_text("[].\n")
    (Path(root) / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n")
    return {**os.environ, "HOME": root, "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(free_port()), "RABBITMQ_MNESIA_BASE": f"{root}/mnesia",
            "RABBITMQ_LOG_BASE": f"{root}/log", "RABBITMQ_PID_FILE": f"{root}/pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{root}/plugins",
            "RABBITMQ_CONFIG_FILE": f"{root}/rabbitmq"}


class _Start:
    """One try at starting the broker on new ports; `failed` says why it did not come up."""

    def __init__(self, root: str, attempt: int) -> None:
        self.port = free_port()
        self.node = f"qbt{os.getpid()}x{attempt}@localhost"
        self.env = _broker_env(root, self.node, self.port)
        self.out = Path(root) / f"server-{attempt}.out"
        with open(self.out, "wb") as log:
            self.server = subprocess.Popen([SERVER], env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        waited = subprocess.run([CTL, "-n", self.node, "wait", f"{root}/pid", "--timeout",
                                 "120"], env=self.env, capture_output=True, timeout=180)
        self.failed = "" if waited.returncode == 0 else (
            waited.stderr.decode(errors="replace") + "\n"
            + "".join(p.read_text(errors="replace")[-2000:]
                      for p in (self.out, *Path(root).glob("log/*.log"))))

    def port_taken(self) -> bool:
        return "eaddrinuse" in self.failed

    def stop(self) -> None:
        """Stop the node, then its epmd unless another node (another run's) registered with
        it: a port picked for epmd may already be one that another run's epmd holds."""
        subprocess.run([CTL, "-n", self.node, "stop"], env=self.env, capture_output=True,
                       timeout=120)
        try:
            self.server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(10)
        epmd = ["epmd", "-port", self.env["ERL_EPMD_PORT"]]
        names = subprocess.run([*epmd, "-names"], env=self.env, capture_output=True,
                               text=True, timeout=30).stdout
        if "name " not in names:
            subprocess.run([*epmd, "-kill"], env=self.env, capture_output=True, timeout=30)


@contextlib.contextmanager
def private_rabbitmq(tries: int = 3) -> Iterator[str]:
    """Start a private RabbitMQ broker; yields its URL, stops it (and its epmd) at the end.
    A port taken between its choice and the broker's bind costs a try on new ports."""
    root = tempfile.mkdtemp(prefix="qbcallbacks-rabbit-")
    try:
        for attempt in range(tries):
            start = _Start(root, attempt)
            if not start.failed:
                break
            start.stop()
            if not start.port_taken() or attempt == tries - 1:
                raise RuntimeError(f"RabbitMQ did not start: {start.failed}")
            for leftover in ("mnesia", "log"):
                shutil.rmtree(f"{root}/{leftover}", ignore_errors=True)
            Path(f"{root}/pid").unlink(missing_ok=True)
        try:
            yield f"amqp://guest:guest@127.0.0.1:{start.port}//"
        finally:
            start.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbitmq_broker() -> Iterator[str]:
    """The URL of a private RabbitMQ broker for the whole test session."""
    if not os.access(SERVER, os.X_OK):
        pytest.skip("RabbitMQ is not installed (Debian package rabbitmq-server)")
    with private_rabbitmq() as url:
        yield url


class CeleryWorkers:
    """Real Celery workers on one queue of `broker`, each in its own directory."""

    def __init__(self, broker: str, root: Path, count: int) -> None:
        self.broker, self.root = broker, root
        self.queue = f"qbcallbacks-test-{uuid.uuid4().hex[:8]}"
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        for i in range(count):
            self.start(i)
        for i in range(count):
            self.wait_ready(i)

    def log(self, i: int) -> Path:
        return self.root / f"w{i}" / "worker.log"

    def start(self, i: int) -> None:
        where = self.root / f"w{i}"
        where.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "QBCALLBACKS_BROKER": self.broker,
               "QBCALLBACKS_QUEUE": self.queue, "PYTHONUNBUFFERED": "1"}
        out = open(self.log(i), "ab")  # noqa: SIM115 - the child holds it
        self.procs[i] = subprocess.Popen(
            [CELERY, "-A", "qbcallbacks.celery", "worker", "--pool", "prefork",
             "--concurrency", "1", "-n", f"w{i}-{self.queue}@localhost", "-Q", self.queue,
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", "INFO"],
            cwd=where, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

    def wait_ready(self, i: int) -> None:
        def ready() -> bool:
            proc = self.procs[i]
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker {i} exited: {self.log(i).read_text(errors='replace')}")
            return " ready." in self.log(i).read_text(errors="replace")
        wait_for(ready, f"celery worker {i} to be ready", 120)

    def kill(self, i: int) -> None:
        """SIGKILL the whole worker (its main process, pool and callbacks), as a host dies."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill(i)


class Relay:
    """A TCP relay to `port` on loopback that can be cut (`down`: every connection is
    closed and new ones are dropped at once) and restored (`up`): a broker out of reach."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.open = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def up(self) -> None:
        self.open = True

    def down(self) -> None:
        self.open = False
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.down()
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
