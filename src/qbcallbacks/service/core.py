"""The service's methods, whatever carries them (a socket line, an HTTP batch).

`event` is the hot path: check the `seq`, read the event as a stream line, journal it through
the dispatcher with the `seq` as its idempotency key, ack. The check and the journaling happen
under one lock, so two copies of one `seq` arriving at once still journal it once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..dispatch.dispatcher import (
    BackPressureError,
    Dispatcher,
    DispatcherClosed,
    DispatcherUnavailable,
)
from ..errors import GlobalCallbackError, QbCallbacksError
from ..stream import EventLineError, EventReader
from .messages import (
    BACK_PRESSURE,
    DRAINING,
    INVALID_PARAMS,
    MAX_SEQ,
    METHOD_NOT_FOUND,
    REFUSED,
    UNAVAILABLE,
)
from .metrics import Metrics
from .proxy import SupervisorProxy


class RpcFault(QbCallbacksError):
    """A request that is answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Service:
    """A dispatcher fed by a remote supervisor."""

    def __init__(self, dispatcher: Dispatcher, proxy: SupervisorProxy, metrics: Metrics,
                 drain_timeout: float | None = None,
                 stopped: threading.Event | None = None) -> None:
        self.dispatcher = dispatcher
        self.proxy = proxy
        self.metrics = metrics
        self.drain_timeout = drain_timeout
        self.reader = EventReader()
        self.draining = False
        #: Set to stop serving (by a `drain` request, or a signal caught before the start).
        self.stopped = stopped if stopped is not None else threading.Event()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._drained: bool | None = None
        metrics.watch(lambda: dispatcher.queue_depth, lambda: proxy.connected)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """Answer one request (raises `RpcFault` for an error answer)."""
        if method == "event":
            return self.event(params)
        if method == "health":
            return self.health()
        if method == "reload":
            return self.reload(params)
        if method == "global":
            return self.global_callbacks(params)
        if method == "drain":
            timeout = params.get("timeout", self.drain_timeout)
            if timeout is not None and (isinstance(timeout, bool)
                                        or not isinstance(timeout, int | float) or timeout < 0):
                raise RpcFault(INVALID_PARAMS, "'timeout' must be a number of seconds")
            return {"drained": self.drain(timeout)}
        raise RpcFault(METHOD_NOT_FOUND, f"unknown method {method!r}; the service knows "
                       "event, attach, reload, health, global and drain")

    def event(self, params: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        seq = params.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            self.metrics.events.labels("rejected").inc()
            raise RpcFault(INVALID_PARAMS, f"'seq' must be a whole number from 1 to {MAX_SEQ}, "
                           f"not {seq!r}")
        line = {k: v for k, v in params.items() if k != "seq"}
        with self._lock:
            if self.draining:
                self.metrics.events.labels("rejected").inc()
                raise RpcFault(DRAINING, "the service is draining; the event was not taken")
            if seq <= self.dispatcher.journal.last_key:
                self.metrics.events.labels("duplicate").inc()
                return {"ack": seq, "duplicate": True}
            try:
                event, job = self.reader.read(line)
                self.dispatcher.emit(event, job, key=seq)
            except EventLineError as exc:
                self.metrics.events.labels("rejected").inc()
                raise RpcFault(INVALID_PARAMS, str(exc)) from None
            except DispatcherUnavailable as exc:
                self.metrics.events.labels("rejected").inc()
                raise RpcFault(UNAVAILABLE, str(exc)) from None
            except BackPressureError as exc:
                self.metrics.events.labels("rejected").inc()
                raise RpcFault(BACK_PRESSURE, str(exc)) from None
            except DispatcherClosed as exc:
                self.metrics.events.labels("rejected").inc()
                raise RpcFault(DRAINING, str(exc)) from None
        self.metrics.events.labels("journaled").inc()
        self.metrics.ack.observe(time.perf_counter() - started)
        return {"ack": seq}

    def health(self) -> dict[str, Any]:
        h = self.dispatcher.health
        return {"ok": h.ok and not self.draining,
                "problem": "draining" if self.draining and h.ok else h.problem,
                "since": h.since, "supervisor": self.proxy.connected,
                "draining": self.draining, "queued": self.dispatcher.queue_depth,
                "last_seq": self.dispatcher.journal.last_key}

    def reload(self, params: dict[str, Any]) -> dict[str, Any]:
        dirs = params.get("directories")
        if dirs is not None and (not isinstance(dirs, list)
                                 or not all(isinstance(d, str) for d in dirs)):
            raise RpcFault(INVALID_PARAMS, "'directories' must be a list of directories")
        if self.draining:
            raise RpcFault(DRAINING, "the service is draining; nothing was reloaded")
        found = self.dispatcher.reload(dirs)
        return {"diagnostics": [d.to_json() for d in found]}

    def global_callbacks(self, params: dict[str, Any]) -> dict[str, Any]:
        """The `global` method: add, list or remove the dispatcher's global callbacks."""
        op = params.get("op")
        try:
            if op == "list":
                return {"globals": [g.model_dump(exclude={"name"}) for g in
                                    self.dispatcher.globals()]}
            if op == "add":
                args = [params.get(k) for k in ("trigger", "language", "code")]
                if not all(isinstance(a, str) for a in args):
                    raise RpcFault(INVALID_PARAMS, "add needs 'trigger', 'language' and "
                                   "'code' as strings")
                trigger, language, code = (str(a) for a in args)
                return {"id": self.dispatcher.submit_global(trigger, language=language,
                                                            code=code)}
            if op == "remove":
                gid = params.get("id")
                if isinstance(gid, bool) or not isinstance(gid, int):
                    raise RpcFault(INVALID_PARAMS, "remove needs the 'id' of a global callback")
                self.dispatcher.remove_global(gid)
                return {"removed": gid}
        except GlobalCallbackError as exc:
            raise RpcFault(REFUSED, str(exc)) from None
        raise RpcFault(INVALID_PARAMS, f"'op' must be add, list or remove, not {op!r}")

    def drain(self, timeout: float | None = None) -> bool:
        """Stop taking events, run what was accepted, close the trail; once (later callers get
        the first outcome). Then `stopped` is set."""
        with self._drain_lock:
            if self._drained is None:
                with self._lock:
                    self.draining = True
                self._drained = self.dispatcher.close(drain=True, timeout=timeout)
            return self._drained
