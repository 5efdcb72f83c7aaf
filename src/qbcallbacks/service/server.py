"""The line protocol over Unix and TCP sockets: one thread per connection reads lines, answers
the supervisor's requests in order, and hands its answers to our requests to the proxy.

`reload` and `drain` are answered from a thread of their own: a drain waits for runs that may
be asking this very connection's supervisor something, whose answers this reader must read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

from ..errors import QbCallbacksError
from ..stream import OverlongLine, stream_lines
from .core import RpcFault, Service
from .messages import INVALID_REQUEST, MAX_LINE, PARSE_ERROR

log = logging.getLogger("qbcallbacks.service")


class ListenError(QbCallbacksError):
    """The service cannot listen where it was told to."""


def parse_listen(text: str) -> tuple[str, str, int]:
    """`unix:PATH` or `tcp:HOST:PORT` as (kind, path or host, port)."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest:
        return "unix", rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and int(port) < 65536:
            return "tcp", host.strip("[]"), int(port)
    raise ListenError(f"--listen: {text!r} is not unix:SOCKET or tcp:HOST:PORT")


def _dumps(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


class Connection:
    """One supervisor connection."""

    def __init__(self, sock: socket.socket, service: Service) -> None:
        self.sock = sock
        self.service = service
        self._wlock = threading.Lock()
        self._rfile = sock.makefile("rb", buffering=1 << 16)
        self.attached = False  # answers the service's requests (after its first non-health)

    def send(self, message: dict[str, Any]) -> None:
        data = _dumps(message)
        with self._wlock:
            self.sock.sendall(data)

    def serve(self) -> None:
        proxy = self.service.proxy
        try:
            for raw in stream_lines(self._rfile, MAX_LINE):
                if isinstance(raw, OverlongLine):
                    self._error(None, INVALID_REQUEST, f"a line is at most {MAX_LINE} bytes")
                    return
                if raw.strip():
                    self._line(raw)
        except OSError:
            return
        finally:
            proxy.detach(self)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self._rfile.close()  # the file holds the socket open until it is closed too
                self.sock.close()

    def _error(self, key: Any, code: int, message: str) -> None:
        with contextlib.suppress(OSError):
            self.send({"jsonrpc": "2.0", "id": key, "error": {"code": code, "message": message}})

    def _line(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            self._error(None, PARSE_ERROR, f"not JSON: {str(exc)[:100]}")
            return
        if not isinstance(msg, dict):
            self._error(None, INVALID_REQUEST, "a message is a JSON object")
            return
        if "method" not in msg and ("result" in msg or "error" in msg):
            if not self.service.proxy.answer(msg):
                log.warning("an answer to no request of ours: id %r", msg.get("id"))
            return
        key, method, params = msg.get("id"), msg.get("method"), msg.get("params", {})
        if (msg.get("jsonrpc") != "2.0" or not isinstance(method, str)
                or not isinstance(params, dict)
                or isinstance(key, bool) or not isinstance(key, int | str | None)):
            self._error(key if isinstance(key, int | str) else None, INVALID_REQUEST,
                        'a request has "jsonrpc": "2.0", a "method", "params" as an object '
                        'and an "id"')
            return
        if method not in ("health", "global") and not self.attached:
            # A probe that only asks `health`, or an administrator's `global`, is never asked
            # anything: it is not the supervisor.
            self.attached = True
            self.service.proxy.attach(self)
        if method == "attach":
            if "id" in msg:
                self.send({"jsonrpc": "2.0", "id": key, "result": {"attached": True}})
            return
        if method in ("drain", "reload"):
            threading.Thread(target=self._answer, args=("id" in msg, key, method, params),
                             name=f"qbcallbacks-{method}", daemon=True).start()
        else:
            self._answer("id" in msg, key, method, params)

    def _answer(self, wanted: bool, key: Any, method: str, params: dict[str, Any]) -> None:
        try:
            self._respond(wanted, key, method, params)
        finally:
            if method == "drain":  # answered (or failed): now the service may stop
                self.service.stopped.set()

    def _respond(self, wanted: bool, key: Any, method: str, params: dict[str, Any]) -> None:
        try:
            result = self.service.call(method, params)
        except RpcFault as fault:
            if wanted:
                self._error(key, fault.code, fault.message)
            return
        except Exception as exc:  # a fault of ours: say so, keep serving
            log.exception("%s failed", method)
            if wanted:
                self._error(key, -32603, f"internal error: {type(exc).__name__}: {exc}")
            return
        if wanted:
            with contextlib.suppress(OSError):
                self.send({"jsonrpc": "2.0", "id": key, "result": result})

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class SocketServer:
    """Accepts connections on a Unix or TCP socket, one thread each."""

    def __init__(self, listen: str, service: Service) -> None:
        self.kind, self.where, port = parse_listen(listen)
        self.service = service
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        try:
            if self.kind == "unix":
                self.sock = self._bind_unix(Path(self.where))
            else:
                self.sock = socket.create_server((self.where, port), backlog=64)
        except OSError as exc:
            raise ListenError(f"--listen: cannot listen on {listen}: {exc.strerror}") from None
        self.address = self.sock.getsockname()
        self._thread = threading.Thread(target=self._accept, name="qbcallbacks-accept",
                                        daemon=True)

    @staticmethod
    def _bind_unix(path: Path) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ListenError(f"--listen: {path} exists and is not a socket")
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a service that died: nobody answers there
            else:
                raise ListenError(f"--listen: a service already listens on {path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen(64)
        return sock

    def start(self) -> SocketServer:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            if self.kind == "tcp":
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = Connection(conn, self.service)
            with self._lock:
                self._connections.add(peer)
            threading.Thread(target=self._serve, args=(peer,), name="qbcallbacks-conn",
                             daemon=True).start()

    def _serve(self, peer: Connection) -> None:
        try:
            peer.serve()
        finally:
            with self._lock:
                self._connections.discard(peer)

    def close(self) -> None:
        """Stop accepting, close every connection, remove the socket file."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        with self._lock:
            peers = list(self._connections)
        for peer in peers:
            peer.close()
        if self.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.where)
