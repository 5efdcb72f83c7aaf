"""The line protocol over Unix and TCP sockets: one thread per connection (at most
`max_connections` of them) reads lines, answers the requests in order, and hands a
supervisor's answers to our requests to the proxy.

The first request is `hello` (`access`); a connection that sends anything else first, or
nothing within `Guard.read_timeout`, is closed. `reload` and `drain` are answered from a thread of
their own. What the service writes to a supervisor on its own initiative (a question) is
written within the question's deadline: a supervisor that stops reading is disconnected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

from ..stream import OverlongLine
from .access import ALLOWED, Identity, hello
from .core import RpcFault, Service
from .lines import SocketLines
from .listen import Guard, ListenError, bind_unix, parse_listen, refuse
from .messages import (
    FORBIDDEN,
    HELLO_FIRST,
    INVALID_REQUEST,
    MAX_LINE,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    TOO_MANY,
)
from .proxy import SendTimeout
from .wire import answer_line, dumps, loads

log = logging.getLogger("qbcallbacks.service")

#: A write waits at most this many read timeouts for the peer to read (then it is closed).
WRITE_BOUND = 3


class Connection:
    """One connection, whose role its `hello` sets."""

    def __init__(self, sock: socket.socket, service: Service, guard: Guard,
                 token_required: bool) -> None:
        self.sock = sock
        self.service = service
        self.guard = guard
        self.token_required = token_required
        self.who: Identity | None = None
        self.stalled = False  # closed because it stopped reading what it was asked
        self._slow: list[threading.Thread] = []  # drains and reloads being answered
        self._wlock = threading.Lock()
        self._lines = SocketLines(sock, self._flush)
        self._reader: threading.Thread | None = None
        self._out: list[bytes] = []  # the reader's answers, written before it next waits
        self._sends = False  # a producer that may send events: its events come in batches

    def send(self, message: dict[str, Any], deadline: float | None = None) -> None:
        """Write one message by `deadline` (a question: the asking run's; else the write
        bound), or close the connection (`SendTimeout`): half a line cannot be taken back,
        and a peer that stops reading holds nothing of ours for longer."""
        self._write(dumps(message), deadline)

    def _write(self, data: bytes, deadline: float | None) -> None:
        if deadline is None:
            deadline = time.monotonic() + WRITE_BOUND * self.guard.read_timeout
        if not self._wlock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._stall()
        try:
            self._send_by(data, deadline)
        finally:
            self._wlock.release()

    def _send_by(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.sock], [], left)[1]:
                self._stall()

    def _stall(self) -> NoReturn:
        self.stalled = True
        self.close()
        raise SendTimeout("the supervisor is not reading")

    def _reply(self, message: dict[str, Any]) -> None:
        self._gather(dumps(message))

    def _gather(self, line: bytes) -> None:
        """An answer: gathered on the reader (in order, written before it next waits, or once
        they are many), written at once from any other thread."""
        if threading.current_thread() is not self._reader:
            self._write(line, None)
            return
        self._out.append(line)
        if len(self._out) >= 1024:
            self._flush()

    def _flush(self) -> None:
        if self._out:
            data, self._out = b"".join(self._out), []
            self._write(data, None)

    def serve(self) -> None:
        proxy = self.service.proxy
        try:
            self.sock.settimeout(self.guard.read_timeout)
            self._reader = threading.current_thread()
            while lines := self._lines.batch(MAX_LINE):
                if not self._batch(lines):
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                self._flush()  # the answers to what was read, a refused hello's too
            for thread in self._slow:  # a client that sent a drain and then EOF still
                thread.join()          # gets the answer before the connection closes
            if self.who is not None and self.who.role == "supervisor" and self.who.producer:
                self.service.release_supervisor(self.who.producer, self)
            proxy.detach(self, SendTimeout if self.stalled else None)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                self.sock.close()

    def _error(self, key: Any, code: int, message: str, data: Any = None) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        with contextlib.suppress(OSError):
            self._reply({"jsonrpc": "2.0", "id": key, "error": error})

    def _batch(self, lines: list[bytes | OverlongLine]) -> bool:
        """Take the lines of one read in order; False ends the connection. A producer's
        event requests in a row go to the service as one batch; any other line is taken
        alone once the events before it are answered."""
        events: list[tuple[Any, dict[str, Any]]] = []
        for raw in lines:
            if isinstance(raw, OverlongLine):
                self._events(events)
                self._error(None, INVALID_REQUEST, f"a line is at most {MAX_LINE} bytes")
                return False
            if self._sends:
                try:
                    msg = loads(raw)
                except (ValueError, RecursionError):
                    msg = None
                if (type(msg) is dict and msg.get("method") == "event" and "id" in msg
                        and msg.get("jsonrpc") == "2.0"):
                    key, params = msg["id"], msg.get("params", {})
                    if type(params) is dict and (type(key) is int or type(key) is str
                                                 or key is None):
                        events.append((key, params))
                        continue
            if not raw or raw.isspace():
                continue
            self._events(events)
            if not self._line(raw):
                return False
        self._events(events)
        return True

    def _events(self, events: list[tuple[Any, dict[str, Any]]]) -> None:
        """Answer a producer's event requests in a row (and empty the list)."""
        if not events:
            return
        who = self.who
        assert who is not None and who.producer is not None
        try:
            answers = self.service.events([params for _, params in events], who.producer,
                                          who.epoch)
        except Exception as exc:  # a fault of ours: say so for each, keep serving
            log.exception("events failed")
            answers = [exc] * len(events)
        for (key, _), answer in zip(events, answers, strict=True):
            if isinstance(answer, RpcFault):
                self._error(key, answer.code, answer.message, answer.data)
            elif isinstance(answer, Exception):
                log.error("event failed: %s", answer, exc_info=answer)
                self._error(key, -32603, f"internal error: {type(answer).__name__}: {answer}")
            else:
                with contextlib.suppress(OSError):
                    self._gather(answer_line(key, answer))
        events.clear()

    def _line(self, raw: bytes) -> bool:
        """Take one line; False ends the connection."""
        try:
            msg = loads(raw)
        except (ValueError, RecursionError) as exc:
            self._error(None, PARSE_ERROR, f"not JSON: {str(exc)[:100]}")
            return self.who is not None
        if not isinstance(msg, dict):
            self._error(None, INVALID_REQUEST, "a message is a JSON object")
            return self.who is not None
        if "method" not in msg and ("result" in msg or "error" in msg) and self.who:
            if self.who.role != "supervisor" or not self.service.proxy.answer(msg):
                log.warning("an answer to no request of ours: id %r", msg.get("id"))
            return True
        key, method, params = msg.get("id"), msg.get("method"), msg.get("params", {})
        if (msg.get("jsonrpc") != "2.0" or not isinstance(method, str)
                or not isinstance(params, dict)
                or isinstance(key, bool) or not isinstance(key, int | str | None)):
            self._error(key if isinstance(key, int | str) else None, INVALID_REQUEST,
                        'a request has "jsonrpc": "2.0", a "method", "params" as an object '
                        'and an "id"')
            return self.who is not None
        if self.who is None or method == "hello":
            return self._hello(key, method, params)
        if method not in ALLOWED[self.who.role]:
            known = any(method in allowed for allowed in ALLOWED.values())
            self._error(key, FORBIDDEN if known else METHOD_NOT_FOUND,
                        f"a {self.who.role} connection may not ask {method}; it may ask "
                        f"{', '.join(sorted(ALLOWED[self.who.role]))}")
            return True
        if method == "attach":
            if "id" in msg:
                self._reply({"jsonrpc": "2.0", "id": key, "result": {"attached": True}})
            return True
        if method in ("drain", "reload"):
            thread = threading.Thread(target=self._answer, name=f"qbcallbacks-{method}",
                                      args=("id" in msg, key, method, params), daemon=True)
            self._slow = [t for t in self._slow if t.is_alive()] + [thread]
            thread.start()
        elif method == "event" and self.who.producer is not None and "id" in msg:
            self._events([(key, params)])
        else:  # not a drain: answered here, with nothing to set after
            self._respond("id" in msg, key, method, params)
        return True

    def _hello(self, key: Any, method: str, params: dict[str, Any]) -> bool:
        """The opening request; False (after the answer) when the connection must close."""
        if self.who is not None:
            self._error(key, INVALID_REQUEST, "hello comes once, first")
            return True
        if method != "hello":
            self._error(key, HELLO_FIRST, "the first request is hello (role, producer, epoch, "
                        "token); this connection is closed")
            return False
        try:
            who = hello(params, self.guard.token, self.token_required)
            last = 0
            if who.producer is not None:
                last = self.service.greet(who.producer, who.epoch)
            if who.role == "supervisor" and who.producer is not None and \
                    not self.service.claim_supervisor(who.producer, self):
                raise RpcFault(FORBIDDEN, f"producer {who.producer!r} already has a supervisor "
                               "connected; one at a time")
        except RpcFault as fault:
            self._error(key, fault.code, fault.message, fault.data)
            return False
        self.who = who
        self._sends = who.producer is not None and "event" in ALLOWED[who.role]
        self.sock.settimeout(None)
        if who.role == "supervisor":
            self.service.proxy.attach(self)
        with contextlib.suppress(OSError):
            self._reply({"jsonrpc": "2.0", "id": key, "result": {
                "role": who.role, "producer": who.producer,
                "epoch": who.epoch if who.producer is not None else None, "last_seq": last}})
        return True

    def _answer(self, wanted: bool, key: Any, method: str, params: dict[str, Any]) -> None:
        try:
            self._respond(wanted, key, method, params)
        finally:
            if method == "drain":  # answered (or failed): now the service may stop
                self.service.stopped.set()

    def _respond(self, wanted: bool, key: Any, method: str, params: dict[str, Any]) -> None:
        who = self.who
        assert who is not None
        try:
            result = self.service.call(method, params, who.producer, who.epoch)
        except RpcFault as fault:
            if wanted:
                self._error(key, fault.code, fault.message, fault.data)
            return
        except Exception as exc:  # a fault of ours: say so, keep serving
            log.exception("%s failed", method)
            if wanted:
                self._error(key, -32603, f"internal error: {type(exc).__name__}: {exc}")
            return
        if wanted:
            with contextlib.suppress(OSError):
                self._gather(answer_line(key, result))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class SocketServer:
    """Accepts connections on a Unix or TCP socket, one thread each, at most
    `guard.max_connections` at once."""

    def __init__(self, listen: str, service: Service, guard: Guard | None = None) -> None:
        self.kind, self.where, port = parse_listen(listen)
        self.service = service
        self.guard = guard or Guard()
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        try:
            if self.kind == "unix":
                self.sock = bind_unix(Path(self.where), self.guard)
            else:
                self.sock = socket.create_server((self.where, port), backlog=64)
        except OSError as exc:
            raise ListenError(f"--listen: cannot listen on {listen}: {exc.strerror}") from None
        self.address = self.sock.getsockname()
        self._thread = threading.Thread(target=self._accept, name="qbcallbacks-accept",
                                        daemon=True)

    def start(self) -> SocketServer:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                full = len(self._connections) >= self.guard.max_connections
            if full:
                refuse(conn, dumps({"jsonrpc": "2.0", "id": None, "error": {
                    "code": TOO_MANY, "message": f"the service has {self.guard.max_connections} "
                    "connections open; try later"}}))
                continue
            if self.kind == "tcp":
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = Connection(conn, self.service, self.guard, self.kind == "tcp")
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

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

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
