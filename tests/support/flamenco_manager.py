"""A small HTTP server standing in for a Flamenco Manager's REST API (`/api/v3`), answering as
Flamenco's OpenAPI document says for one job and one task, and recording every call."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

JOB = "5b1e0c3a-1111-4222-8333-944455556666"
TASK = "7c2f1d4b-aaaa-4bbb-8ccc-dddd11112222"


class Manager(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, object]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, None))
        if self.path == f"/api/v3/jobs/{JOB}":
            self._reply(200, {"id": JOB, "name": "shot", "status": "active", "priority": 60,
                              "type": "simple-blender-render"})
        elif self.path == f"/api/v3/jobs/{JOB}/tasks":
            self._reply(200, {"tasks": [{"id": TASK, "name": "render 1", "status": "failed"}]})
        else:
            self._reply(404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, body))
        known = (f"/api/v3/jobs/{JOB}/setstatus", f"/api/v3/tasks/{TASK}/setstatus")
        if self.path in known and body.get("status") != "paused":
            self._reply(204)
        else:
            self._reply(422, {"code": 422, "message": "not allowed"})

    def do_DELETE(self) -> None:
        self.calls.append(("DELETE", self.path, None))
        self._reply(204)


@pytest.fixture
def flamenco_manager():
    """The fake Manager's base URL; its calls are in `Manager.calls`."""
    Manager.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Manager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
