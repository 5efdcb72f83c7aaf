"""The optional HTTP face: `POST /events` (a batch), `GET /health`, `GET /metrics`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .core import RpcFault, Service
from .messages import BACK_PRESSURE, DRAINING, INVALID_PARAMS, UNAVAILABLE
from .server import ListenError

#: The largest `POST /events` body.
MAX_BODY = 16 << 20
_BUSY = {BACK_PRESSURE, UNAVAILABLE, DRAINING}


def run_batch(service: Service, items: list[Any]) -> tuple[int, dict[str, Any]]:
    """Take events in order until one is not taken; the HTTP status and the body."""
    acks: list[dict[str, Any]] = []
    for item in items:
        seq = item.get("seq") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise RpcFault(INVALID_PARAMS, "an event is a JSON object")
            acks.append(service.event(item))
        except RpcFault as fault:
            error = {"code": fault.code, "message": fault.message, "seq": seq}
            return (503 if fault.code in _BUSY else 400), {"acks": acks, "error": error}
    return 200, {"acks": acks}


class HttpServer:
    """A threading HTTP server over the service, started on its own thread."""

    def __init__(self, address: str, service: Service) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ListenError(f"--http: {address!r} is not HOST:PORT")

        class Handler(_Handler):
            pass

        Handler.service = service
        try:
            self.httpd = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        except OSError as exc:
            raise ListenError(f"--http: cannot listen on {address}: {exc.strerror}") from None
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="qbcallbacks-http",
                                        daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    service: Service
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the service logs what matters itself."""

    def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._reply(status, json.dumps(data).encode())

    def do_GET(self) -> None:
        if self.path == "/health":
            health = self.service.health()
            self._json(200 if health["ok"] else 503, health)
        elif self.path == "/metrics":
            self._reply(200, self.service.metrics.text(),
                        "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._json(404, {"error": f"no {self.path}; try /health, /metrics, POST /events"})

    def do_POST(self) -> None:
        if self.path != "/events":
            self._json(404, {"error": f"no POST {self.path}; events go to POST /events"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "a Content-Length is needed"})
            return
        if length > MAX_BODY or length < 0:
            self.close_connection = True
            self._json(413, {"error": f"a batch is at most {MAX_BODY} bytes"})
            return
        try:
            items = json.loads(self.rfile.read(length))
        except (ValueError, RecursionError) as exc:
            self._json(400, {"acks": [], "error": {"code": -32700,
                                                   "message": f"not JSON: {str(exc)[:100]}"}})
            return
        if not isinstance(items, list):
            self._json(400, {"acks": [], "error": {"code": -32600, "message":
                                                   "the body is a JSON array of events"}})
            return
        status, body = run_batch(self.service, items)
        self._json(status, body)
