"""A client of the callback service's line protocol (`spec/service.md`), for adapters.

The whole API: `ServiceClient(address, supervisor, producer=..., epoch=..., token=...)`
opens a connection and says `hello`; `last_seq` is then the highest seq the service holds for
that producer and epoch (resume above it); `event(params)` sends one event and returns its
ack; `request(method, params)` sends any other request; `close()`.

One connection carries both directions. Given a `supervisor`, the connection is that
producer's `supervisor` and the service's calls (`jobinfo`, actions, `mail`) are answered from
it on a small pool of threads, so a slow Manager never holds up the acks; without one it is an
`adapter` that only sends events. Errors the service marks as "send again later" (back
pressure, unavailable, draining, an earlier seq owed) raise `ServiceBusy` (its `resend_from`
says from which seq, when the service said); a refused event raises `ServiceRefused`; a
connection that breaks, or a `hello` the service refuses (a wrong token, the producer's
supervisor still connected), raises `ServiceGone`. The caller re-sends with the same `seq`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import QbCallbacksError
from ..model.supervisor import MailMessage, Supervisor
from ..service.messages import MAX_LINE
from ..stream import OverlongLine, stream_lines

log = logging.getLogger("qbcallbacks.adapters")

#: Error codes after which the same event may be sent again later.
RETRY_CODES = frozenset({-32001, -32002, -32003, -32004})


class ServiceError(QbCallbacksError):
    """The service could not take an event."""


class ServiceGone(ServiceError):
    """The connection could not be opened or broke before the answer came."""


class ServiceBusy(ServiceError):
    """The service asked for the event later (back pressure, unavailable, draining, or an
    earlier seq is owed first: then `resend_from` is that seq)."""

    resend_from: int | None = None


class ServiceRefused(ServiceError):
    """The service refused the event for good (it is not a valid event)."""


def open_socket(address: str, timeout: float = 10.0) -> socket.socket:
    """Connect to `unix:PATH` or `tcp:HOST:PORT`."""
    kind, _, rest = address.partition(":")
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(rest)
            except OSError:
                sock.close()
                raise
        elif kind == "tcp":
            host, _, port = rest.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        else:
            raise ServiceGone(f"{address!r} is not unix:SOCKET or tcp:HOST:PORT")
    except (OSError, ValueError) as exc:
        raise ServiceGone(f"cannot connect to the service at {address}: {exc}") from None
    sock.settimeout(None)
    return sock


class ServiceClient:
    """One connection to `qbcallbacks serve`; `event` sends one event and returns its ack."""

    def __init__(self, address: str, supervisor: Supervisor | None = None, *,
                 producer: str = "adapter", epoch: int = 0, token: str | None = None,
                 answer_threads: int = 4, timeout: float = 60.0) -> None:
        self.address = address
        self.supervisor = supervisor
        self.producer = producer
        self.epoch = epoch
        self.timeout = timeout
        self._sock = open_socket(address)
        self._write_lock = threading.Lock()
        self._waiting: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._gone: str | None = None
        self._pool = ThreadPoolExecutor(answer_threads, thread_name_prefix="qbcallbacks-answer")
        self._reader = threading.Thread(target=self._read_loop, name="qbcallbacks-client",
                                        daemon=True)
        self._reader.start()
        hello: dict[str, Any] = {"role": "supervisor" if supervisor is not None else "adapter",
                                 "producer": producer, "epoch": epoch}
        if token is not None:
            hello["token"] = token
        try:
            said = self.request("hello", hello)
        except ServiceError as exc:  # no event was refused: the caller may try again later
            self.close()
            raise ServiceGone(f"the service at {address} did not take our hello: {exc}"
                              ) from None
        #: The highest seq the service held for this producer and epoch when we said hello.
        self.last_seq = int(said.get("last_seq") or 0) if isinstance(said, dict) else 0

    def close(self) -> None:
        self._gone = self._gone or "closed"
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._reader.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def alive(self) -> bool:
        return self._gone is None

    def request(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and wait for its result."""
        if self._gone is not None:
            raise ServiceGone(f"the connection to {self.address} is closed: {self._gone}")
        rid = next(self._ids)
        answer: Future[Any] = Future()
        self._waiting[rid] = answer
        try:
            self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            return answer.result(self.timeout)
        except TimeoutError:
            raise ServiceGone(f"no answer to {method} within {self.timeout:g} s") from None
        finally:
            self._waiting.pop(rid, None)

    def event(self, params: dict[str, Any]) -> dict[str, Any]:
        """Send one event (with its `seq`); its ack once the service journaled it."""
        result = self.request("event", params)
        if not isinstance(result, dict) or "ack" not in result:
            raise ServiceRefused(f"unexpected answer to an event: {result!r}")
        return result

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        try:
            with self._write_lock:
                self._sock.sendall(data)
        except OSError as exc:
            self._fail(f"sending failed: {exc}")
            raise ServiceGone(f"the connection to {self.address} broke: {exc}") from None

    def _fail(self, why: str) -> None:
        self._gone = self._gone or why
        for answer in list(self._waiting.values()):
            if not answer.done():
                answer.set_exception(ServiceGone(f"the connection to {self.address} broke "
                                                 f"before the answer: {why}"))

    def _read_loop(self) -> None:
        reader = self._sock.makefile("rb")
        try:
            for line in stream_lines(reader, MAX_LINE):
                if isinstance(line, OverlongLine):
                    self._fail(f"the service sent a line over {MAX_LINE} bytes")
                    break
                if line.strip():
                    self._dispatch(line)
        except (OSError, ValueError) as exc:
            self._fail(f"reading failed: {exc}")
        finally:
            reader.close()
            self._fail("the service closed the connection")

    def _dispatch(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            log.warning("the service sent a line that is not JSON: %r", line[:200])
            return
        if not isinstance(message, dict):
            return
        if "method" in message:
            self._pool.submit(self._answer, message)
            return
        answer = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if answer is None or answer.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            code, text = error.get("code"), str(error.get("message", ""))
            kind = ServiceBusy if code in RETRY_CODES else ServiceRefused
            refusal = kind(f"the service refused the request ({code}): {text}")
            data = error.get("data")
            if isinstance(refusal, ServiceBusy) and isinstance(data, dict):
                owed = data.get("resend_from")
                refusal.resend_from = owed if isinstance(owed, int) else None
            answer.set_exception(refusal)
        else:
            answer.set_result(message.get("result"))

    def _answer(self, request: dict[str, Any]) -> None:
        rid = request.get("id")
        try:
            result = self._call(str(request.get("method")), request.get("params") or {})
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": result}
        except Exception as exc:  # answered as an error: the callback sees it, we go on
            reply = {"jsonrpc": "2.0", "id": rid,
                     "error": {"code": -32000, "message": str(exc) or type(exc).__name__}}
        if rid is not None:
            with contextlib.suppress(ServiceGone):
                self._send(reply)

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        s = self.supervisor
        if s is None:
            raise ValueError("this connection answers no questions")
        if method == "jobinfo":
            return s.jobinfo(*params.get("args", []))
        if method == "job_action":
            return s.job_action(params["action"], int(params["job"]))
        if method == "work_action":
            return s.work_action(params["action"], int(params["job"]), str(params["work"]))
        if method == "subjob_action":
            return s.subjob_action(params["action"], int(params["job"]), int(params["subjob"]))
        if method == "mail":
            s.mail(MailMessage.model_validate(params))
            return None
        raise ValueError(f"unknown method {method!r}")
