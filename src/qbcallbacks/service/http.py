"""The optional HTTP face: `POST /events?producer=NAME&epoch=N` (a batch), `GET /health`,
`GET /metrics`.

Bounded like the socket: at most `max_connections` at once (more are answered 503 and
closed), every read has a timeout and a body three times that in all, a body is at most
`MAX_BODY` and only `BODIES` are read at once. A body framed by anything but Content-Length
(`Transfer-Encoding`) is refused with 411 and the connection closed, so it can never be
framed two ways. With a token, `POST /events` and `GET /metrics` need
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .access import producer_of, token_matches
from .core import RpcFault, Service
from .listen import Guard, ListenError
from .messages import BACK_PRESSURE, DRAINING, INVALID_PARAMS, OUT_OF_ORDER, UNAVAILABLE

#: The largest `POST /events` body.
MAX_BODY = 4 << 20
#: How many bodies are read at once (so memory is bounded by BODIES * MAX_BODY).
BODIES = 4
_BUSY = {BACK_PRESSURE, UNAVAILABLE, DRAINING, OUT_OF_ORDER}


def run_batch(service: Service, items: list[Any], producer: str,
              epoch: int) -> tuple[int, dict[str, Any]]:
    """Take events in order until one is not taken; the HTTP status and the body."""
    acks: list[dict[str, Any]] = []
    for item in items:
        seq = item.get("seq") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise RpcFault(INVALID_PARAMS, "an event is a JSON object")
            acks.append(service.event(item, producer, epoch))
        except RpcFault as fault:
            error = {**fault.error(), "seq": seq}
            return (503 if fault.code in _BUSY else 400), {"acks": acks, "error": error}
    return 200, {"acks": acks}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # connections past the cap are taken at once and refused
    guard: Guard

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 guard: Guard) -> None:
        self.guard = guard
        self._active = 0
        self._count = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count:
            full = self._active >= self.guard.max_connections
            if not full:
                self._active += 1
        if full:
            with contextlib.suppress(OSError):
                request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n", socket.MSG_DONTWAIT)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count:
                self._active -= 1


class HttpServer:
    """A threading HTTP server over the service, started on its own thread."""

    def __init__(self, address: str, service: Service, guard: Guard | None = None) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ListenError(f"--http: {address!r} is not HOST:PORT")

        class Handler(_Handler):
            pass

        Handler.service = service
        Handler.guard = guard or Guard()
        Handler.bodies = threading.BoundedSemaphore(BODIES)
        Handler.timeout = Handler.guard.read_timeout
        try:
            self.httpd = _Server((host.strip("[]"), int(port)), Handler, Handler.guard)
        except OSError as exc:
            raise ListenError(f"--http: cannot listen on {address}: {exc.strerror}") from None
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
    guard: Guard
    bodies: threading.BoundedSemaphore
    protocol_version = "HTTP/1.1"
    timeout = 10.0  # every read of the request line, headers and body (the guard's)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the service logs what matters itself."""

    def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._reply(status, json.dumps(data).encode())

    def _authorised(self) -> bool:
        token = self.guard.token
        if token is None:
            return True
        scheme, _, given = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and token_matches(given.strip(), token):
            return True
        self.close_connection = True
        self._json(401, {"error": "Authorization: Bearer <token> is needed"})
        return False

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            health = self.service.health()
            self._json(200 if health["ok"] else 503, health)
        elif path == "/metrics":
            if self._authorised():
                body, kind = self.service.metrics.exposition(self.headers.get("Accept"))
                self._reply(200, body, kind)
        else:
            self._json(404, {"error": f"no {path}; try /health, /metrics, POST /events"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/events":
            self.close_connection = True  # its body is not read
            self._json(404, {"error": f"no POST {url.path}; events go to POST /events"})
            return
        if not self._authorised():
            return
        try:
            query = parse_qs(url.query, max_num_fields=8)
            name = query.get("producer", [None])[0]
            epoch = query.get("epoch", [""])[0]
            producer, number = producer_of(name, int(epoch) if epoch.isdigit() else None)
        except (RpcFault, ValueError) as exc:
            self.close_connection = True
            self._json(400, {"acks": [], "error": {"code": INVALID_PARAMS, "message":
                             f"POST /events?producer=NAME&epoch=N: {exc}"}})
            return
        raw = self._body()
        if raw is None:
            return
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self._json(400, {"acks": [], "error": {"code": -32700,
                                                   "message": f"not JSON: {str(exc)[:100]}"}})
            return
        if not isinstance(items, list):
            self._json(400, {"acks": [], "error": {"code": -32600, "message":
                                                   "the body is a JSON array of events"}})
            return
        status, body = run_batch(self.service, items, producer, number)
        self._json(status, body)

    def _body(self) -> bytes | None:
        """The body, read within its time; None once refused (the connection then closes)."""
        self.close_connection = True  # until the body is read whole
        if self.headers.get("Transfer-Encoding") is not None:
            self._json(411, {"error": "a body is framed by Content-Length only"})
            return None
        text = self.headers.get("Content-Length", "")
        if not text.isdigit() or len(self.headers.get_all("Content-Length") or []) != 1:
            self._json(411, {"error": "one Content-Length is needed"})
            return None
        length = int(text)
        if length > MAX_BODY:
            self._json(413, {"error": f"a batch is at most {MAX_BODY} bytes"})
            return None
        if not self.bodies.acquire(timeout=self.timeout):
            self._json(503, {"error": "too many batches are being read; try later"})
            return None
        try:
            return self._read(length)
        finally:
            self.bodies.release()

    def _read(self, length: int) -> bytes | None:
        deadline = time.monotonic() + 3 * self.timeout
        chunks: list[bytes] = []
        left = length
        while left > 0:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                self.connection.settimeout(min(self.timeout, remaining))
                chunk = self.rfile.read1(min(left, 1 << 16))
            except OSError:
                return None  # too slow or gone: nothing was taken, the connection closes
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        self.close_connection = False
        return b"".join(chunks)
