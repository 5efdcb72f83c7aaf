"""A stand-in Flamenco Manager: its REST API (`/api/v3`, answered as the Manager's
`api_impl` answers: 400 for an id that is not a UUID or a body its OpenAPI validator refuses,
404 for an unknown job or task, 500 for a status change it did not make), its job and task state
machine (`support.flamenco_statemachine`), and its MQTT forwarder, which keeps at most 10
messages while it cannot publish and drops the rest, as the Manager's does."""

from __future__ import annotations

import json
import queue
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from support.flamenco_payloads import api_job, api_task_summary
from support.flamenco_statemachine import StateMachine

JOB_STATUSES = frozenset({"active", "canceled", "completed", "failed", "paused",
                          "pause-requested", "queued", "cancel-requested", "requeueing",
                          "under-construction"})
TASK_STATUSES = frozenset({"active", "canceled", "completed", "failed", "queued",
                           "soft-failed", "paused"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


class Forwarder:
    """The Manager's MQTT forwarder: `broadcast` queues (10 at most) and a runner publishes
    at QoS 1 while the link is up; cut off (`disconnect()`, or a broker that went away), the
    queue fills and further messages are dropped, and the message in hand is lost."""

    QUEUE_SIZE = 10

    def __init__(self, port: int | None, prefix: str) -> None:
        self.prefix = prefix
        self.dropped = 0
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(self.QUEUE_SIZE)
        self._up = threading.Event()
        self._linked = False
        self._cut = False
        self._idle = threading.Condition()
        self._busy = 0
        self._client: mqtt.Client | None = None
        self._runner: threading.Thread | None = None
        if port is not None:
            self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flamenco")
            self._client.reconnect_delay_set(0.1, 1)
            self._client.on_connect = lambda *a: self._link(True)
            self._client.on_disconnect = lambda *a: self._link(False)
            self._client.connect_async("127.0.0.1", port)
            self._client.loop_start()
            self._runner = threading.Thread(target=self._run, daemon=True)
            self._runner.start()

    def _link(self, up: bool | None = None, cut: bool | None = None) -> None:
        with self._idle:
            self._linked = self._linked if up is None else up
            self._cut = self._cut if cut is None else cut
            if self._linked and not self._cut:
                self._up.set()
            else:
                self._up.clear()

    def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        full = self.prefix + topic  # concatenated as written, as the Manager does
        if self._client is None:
            return
        item = (full, json.dumps(payload).encode())
        with self._idle:
            self._busy += 1
        try:
            if self._up.is_set():
                # A Manager linked to a local broker keeps up: wait for room rather than
                # drop (a slow test machine is not a slow broker).
                self._queue.put(item, timeout=30)
            else:
                self._queue.put_nowait(item)
        except queue.Full:
            self._done(dropped=True)  # "could not send event, queue is full"

    def disconnect(self) -> None:
        """The Manager loses the broker: nothing is published until `reconnect()`."""
        self._link(cut=True)

    def reconnect(self) -> None:
        self._link(cut=False)

    def drain(self, limit: float = 60.0) -> None:
        """Wait until everything queued was published or dropped (the link must be up)."""
        with self._idle:
            assert self._idle.wait_for(lambda: self._busy == 0, limit), "forwarder stuck"

    def _run(self) -> None:
        assert self._client is not None
        while True:
            self._up.wait()
            item = self._queue.get()
            if item is None:
                return
            if not self._up.is_set():  # cut off while sending: the Manager logs and drops it
                self._done(dropped=True)
                continue
            try:
                self._client.publish(item[0], item[1], qos=1).wait_for_publish(30)
            except (RuntimeError, ValueError):
                self._done(dropped=True)
                continue
            self.sent.append((item[0], json.loads(item[1])))
            self._done()

    def _done(self, *, dropped: bool = False) -> None:
        with self._idle:
            self.dropped += dropped
            self._busy -= 1
            self._idle.notify_all()

    def close(self) -> None:
        if self._client is not None and self._runner is not None:
            self._link(True, False)
            self._queue.put(None)
            self._runner.join(30)
            self._client.disconnect()
            self._client.loop_stop()


class StandInManager:
    """The stand-in's state machine, forwarder and HTTP server; `url` is its base URL.
    `refuse` makes the next status changes answer 500 without changing anything."""

    def __init__(self, broker_port: int | None = None, prefix: str = "flamenco") -> None:
        self.forwarder = Forwarder(broker_port, prefix)
        self.machine = StateMachine(self.forwarder.broadcast)
        self.calls: list[tuple[str, str, Any]] = []
        #: The client ends (address, port) that called: one per pooled connection.
        self.peers: set[tuple[str, int]] = set()
        self.refuse = 0
        #: True: every connection is dropped unanswered; N > 0: the next N are.
        self.down = False
        self.blips = 0
        #: The next N reads answer 503 (the database is busy).
        self.busy = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.forwarder.close()

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if method == "GET" and self.busy > 0:
            self.busy -= 1
            return 503, _error(503, "database busy")
        m = self.machine
        parts = path.split("?")[0].strip("/").split("/")
        with m.lock:
            if parts[:2] != ["api", "v3"] or len(parts) < 3:
                return 404, _error(404, "not found")
            kind, ident, rest = parts[2], (parts[3] if len(parts) > 3 else None), parts[4:]
            if kind == "jobs" and ident is None and method == "GET":
                return 200, {"jobs": [api_job(j) for j in m.jobs.values()]}
            if ident is None or not _UUID.match(ident):
                return 400, _error(400, "job ID not valid")
            if kind == "jobs":
                return self._job(method, ident, rest, body)
            if kind == "tasks":
                return self._task(method, ident, rest, body)
        return 404, _error(404, "not found")

    def _job(self, method: str, uuid: str, rest: list[str], body: Any) -> tuple[int, Any]:
        m = self.machine
        if rest == ["tasks"] and method == "GET":
            job = m.jobs.get(uuid)
            tasks = [m.tasks[t] for t in job.tasks] if job else []
            return 200, {"tasks": [api_task_summary(t, i) for i, t in enumerate(tasks)]}
        if uuid not in m.jobs:
            return 404, _error(404, "no such job")
        if not rest and method == "GET":
            return 200, api_job(m.jobs[uuid])
        if not rest and method == "DELETE":
            m.delete(uuid)
            return 204, None
        if rest == ["setstatus"] and method == "POST":
            if not _status_change(body, JOB_STATUSES):
                return 400, _error(400, "invalid format")
            if self._refusing():
                return 500, _error(500, "unexpected error changing job status")
            m.job_status_change(uuid, body["status"])
            return 204, None
        return 405, _error(405, "method not allowed")

    def _task(self, method: str, uuid: str, rest: list[str], body: Any) -> tuple[int, Any]:
        m = self.machine
        task = m.tasks.get(uuid)
        if task is None:
            return 404, _error(404, "no such task")
        if not rest and method == "GET":
            return 200, {**api_task_summary(task, 0), "job_id": task.job, "activity": ""}
        if rest == ["setstatus"] and method == "POST":
            if not _status_change(body, TASK_STATUSES):
                return 400, _error(400, "invalid format")
            if self._refusing():
                return 500, _error(500, "unexpected error changing task status")
            m.task_status_change(uuid, body["status"])
            return 204, None
        return 405, _error(405, "method not allowed")

    def _refusing(self) -> bool:
        if self.refuse > 0:
            self.refuse -= 1
            return True
        return False


def _status_change(body: Any, statuses: frozenset[str]) -> bool:
    return (isinstance(body, dict) and body.get("status") in statuses
            and isinstance(body.get("reason"), str))


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _handler(manager: StandInManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            manager.peers.add(self.client_address)
            blip = manager.blips > 0
            manager.blips -= blip
            if manager.down or blip:
                self.close_connection = True
                self.connection.close()  # a Manager blip: the connection drops unanswered
                return
            size = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(size) if size else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            code, answer = manager.answer(self.command, urllib.parse.unquote(self.path), body)
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

    return Handler


@pytest.fixture
def flamenco_manager() -> Iterator[StandInManager]:
    """A stand-in Manager with no broker (REST only)."""
    manager = StandInManager()
    yield manager
    manager.close()


@pytest.fixture
def manager_on_broker(broker: int) -> Iterator[StandInManager]:
    """A stand-in Manager publishing to the test broker under the prefix `flamenco`."""
    manager = StandInManager(broker)
    yield manager
    manager.close()
