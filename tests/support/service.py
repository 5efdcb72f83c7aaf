"""Starting `qbcallbacks serve` as a real process, and a small line client for it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: A callback that asks the supervisor about its job, then writes one line: it runs to its end
#: only when the supervisor answers.
ASKING_CALLBACK = """\
import qb
job = qb.jobinfo("-id", qb.jobid())[0]
with open("ran.log", "a") as fh:
    fh.write("%s %s\\n" % (job["name"], qb.workid() if hasattr(qb, "workid") else ""))
"""

#: The asking callback, held back until the test creates `go-JOBID` in the working directory:
#: the test decides whether a supervisor is connected when the question is asked. It creates
#: `asking-JOBID` just before it asks.
GATED_CALLBACK = """\
import os, time, qb
while not os.path.exists("go-%d" % qb.jobid()):
    time.sleep(0.02)
open("asking-%d" % qb.jobid(), "w").close()
""" + ASKING_CALLBACK

#: A callback that only writes one line (no question to the supervisor).
QUIET_CALLBACK = """\
import qb, time
time.sleep(%(sleep)s)
with open("ran.log", "a") as fh:
    fh.write("job %%s\\n" %% qb.jobid())
"""


def callback_dir(root: Path, *, asking: bool = True, sleep: float = 0.0,
                 gated: bool = False) -> Path:
    """A callback directory whose one callback fires on every job's `complete`."""
    d = root / "callbacks"
    d.mkdir(parents=True, exist_ok=True)
    (d / "callbacks.conf").write_text("ran.py = complete-job-self\n")
    text = GATED_CALLBACK if gated else ASKING_CALLBACK
    (d / "ran.py").write_text(text if asking else QUIET_CALLBACK % {"sleep": sleep})
    return d


def eventually(check: Any, limit: float = 60.0) -> None:
    """Wait until `check()` is true: what a service does after a socket closes, it does a
    little later."""
    end = time.monotonic() + limit
    while not check():
        assert time.monotonic() < end, f"still not true after {limit} s"
        time.sleep(0.05)


def ran_lines(workdir: Path) -> list[str]:
    log = workdir / "ran.log"
    return log.read_text().splitlines() if log.exists() else []


class Served:
    """A running `qbcallbacks serve` process."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: Path, workdir: Path) -> None:
        self.proc, self.sock, self.workdir = proc, sock, workdir
        self._err: list[bytes] = []
        # Read standard error all along: a full pipe would stop the service.
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stderr(self) -> str:
        """What the service wrote on standard error after its first line (once it ended)."""
        if self.proc.poll() is not None:
            self._reader.join(30)
        return b"".join(self._err).decode(errors="replace")


def start(tmp: Path, callbacks: Path, *extra: str, timeout: float = 20.0,
          name: str = "svc.sock", umask: int | None = None) -> Served:
    """Start the service (under `umask`, if given) and wait until it listens (it says so on
    standard error)."""
    sock = tmp / name
    workdir = tmp / "run"
    cmd = [sys.executable, "-m", "qbcallbacks", "serve", str(callbacks), "--listen",
           f"unix:{sock}", "--workdir", str(workdir), "--audit", str(tmp / "audit.db"),
           "--timeout", str(timeout), *extra]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=None if umask is None else lambda: os.umask(umask))
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    if "listening on" not in line:
        proc.kill()
        raise AssertionError(f"the service did not start: {line}{proc.stderr.read().decode()}")
    return Served(proc, sock, workdir)


@contextlib.contextmanager
def served(tmp: Path, callbacks: Path, *extra: str, **kw: Any) -> Iterator[Served]:
    s = start(tmp, callbacks, *extra, **kw)
    try:
        yield s
    finally:
        s.close()


class LineClient:
    """A blocking JSON-RPC line client that says `hello` (as `role`; `hello=False`: not) and
    can answer `jobinfo` itself. `where` is a Unix socket path or a (host, port) pair."""

    def __init__(self, where: Path | tuple[str, int], jobs: dict[int, str] | None = None, *,
                 role: str = "supervisor", producer: str = "test", epoch: int = 1,
                 token: str | None = None, hello: bool = True) -> None:
        if isinstance(where, tuple):
            self.sock = socket.create_connection(where)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(where))
        self.rfile = self.sock.makefile("rb")
        self.jobs = jobs  # None: never answer the service's questions
        self.asked: list[dict[str, Any]] = []
        self._id = 0
        self.hello: dict[str, Any] = {}
        self._where, self._token = where, token
        if hello:
            params: dict[str, Any] = {"role": role}
            if role != "admin":
                params.update(producer=producer, epoch=epoch)
            if token is not None:
                params["token"] = token
            self.hello = self.request("hello", params)

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall((json.dumps(message) + "\n").encode())

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its response, answering questions meanwhile."""
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}})
        return self.response(self._id)

    def response(self, key: int) -> dict[str, Any]:
        while True:
            msg = json.loads(self.rfile.readline())
            if "method" in msg:
                self.asked.append(msg)
                self._answer(msg)
            elif msg.get("id") == key:
                return dict(msg)

    def _answer(self, msg: dict[str, Any]) -> None:
        if self.jobs is None:
            return
        job = int(msg["params"]["args"][1])
        self.send({"jsonrpc": "2.0", "id": msg["id"], "result": [
            {"id": job, "name": self.jobs.get(job, f"job{job}"), "label": "", "status":
             "complete", "pgrp": job, "pid": 0}]})

    def drain(self) -> dict[str, Any]:
        """Ask for a drain on an admin connection of its own (a supervisor may not), answering
        this connection's questions meanwhile (runs that drain may still ask)."""
        def pump() -> None:
            with contextlib.suppress(OSError, ValueError):
                while line := self.rfile.readline():
                    msg = json.loads(line)
                    if "method" in msg:
                        self.asked.append(msg)
                        self._answer(msg)

        threading.Thread(target=pump, daemon=True).start()
        with LineClient(self._where, role="admin", token=self._token) as admin:
            return admin.request("drain")

    def event(self, seq: int, job: int, name: str = "complete") -> dict[str, Any]:
        return self.request("event", {"seq": seq, "type": "job", "event": name,
                                      "job": {"id": job, "name": f"shot{job}"}})

    def serve_questions(self, seconds: float = 0.0, until: Any = None,
                        limit: float = 60.0) -> None:
        """Answer the service's questions for `seconds`, or until `until()` is true (failing
        after `limit` seconds); each health request is a chance to answer what is waiting."""
        self.request("attach")
        end = time.monotonic() + (limit if until is not None else seconds)
        while time.monotonic() < end:
            self.request("health")
            if until is not None and until():
                return
            time.sleep(0.05)
        assert until is None, f"still waiting after {limit} s"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
