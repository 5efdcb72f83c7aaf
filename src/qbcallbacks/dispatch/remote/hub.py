"""The dispatcher's end of the line to its workers: one queue on the broker, answered here.

A consumer thread takes each request (`wire`) and hands it to a small thread pool, so a slow
`qb` call holds up only its own run; the answer goes to the worker's reply queue. The queue
is exclusive to this dispatcher and disappears with it: a worker whose dispatcher is gone
gets no answer and leaves the run to the trail's recovery at the next start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .wire import kombu

log = logging.getLogger("qbcallbacks.remote")

Handler = Callable[[dict[str, Any]], "dict[str, Any] | None"]


class Hub:
    """Consumes the dispatcher's queue and answers with `handler(request)`."""

    def __init__(self, broker: str, handler: Handler, *, threads: int = 16) -> None:
        self.broker, self._handler = broker, handler
        self.name = f"qbcallbacks.dispatcher.{uuid.uuid4().hex}"
        #: The broker's fault and since when, while it lasts.
        self.problem: tuple[str, float] | None = None
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qbcb-hub")
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._conn: Any = None
        self._out: Any = None
        self._thread = threading.Thread(target=self._loop, name="qbcb-hub", daemon=True)

    def start(self) -> None:
        """Declare the queue (so runs sent from now on can answer) and start consuming; a
        broker out of reach is a `problem` until the consumer thread reaches it."""
        try:
            self._connect()
        except Exception as exc:
            log.error("the broker is out of reach: %s", exc)
            self.problem = (f"the broker is out of reach: {exc}", time.time())
        self._thread.start()

    @property
    def ready(self) -> bool:
        """Whether the queue is declared and consumed (answers to workers can come back)."""
        return self._conn is not None and self.problem is None

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._pool.shutdown(wait=True)
        for conn in (self._conn, self._out):
            if conn is not None:
                try:
                    conn.release()
                except Exception:  # a broken connection has nothing left to release
                    log.debug("closing a broker connection failed", exc_info=True)

    def _connect(self) -> None:
        k = kombu()
        conn = k.Connection(self.broker, connect_timeout=10)
        conn.connect()  # one attempt: the loop retries with its own backoff
        queue = k.Queue(self.name, exclusive=True, auto_delete=True, durable=False)
        k.Consumer(conn.default_channel, queues=[queue], no_ack=True, accept=["json"],
                 callbacks=[self._on_message]).consume()
        self._conn = conn

    def _loop(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                if self._conn is None:
                    self._connect()
                    self._clear()
                self._conn.drain_events(timeout=0.5)
                delay = 0.1
            except TimeoutError:
                continue
            except Exception as exc:  # the broker went away: say so, reconnect with backoff
                if self.problem is None:
                    log.error("the broker is out of reach: %s", exc)
                    self.problem = (f"the broker is out of reach: {exc}", time.time())
                broken, self._conn = self._conn, None
                if broken is not None:
                    with contextlib.suppress(Exception):
                        broken.release()
                self._stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._clear()

    def _clear(self) -> None:
        if self.problem is not None:
            log.warning("the broker is reachable again")
            self.problem = None

    def _on_message(self, body: Any, message: Any) -> None:
        if isinstance(body, dict):
            self._pool.submit(self._answer, body)

    def _answer(self, request: dict[str, Any]) -> None:
        try:
            reply = self._handler(request)
        except Exception as exc:  # the handler never raises by design; never go silent
            log.exception("a worker's request failed in the dispatcher")
            reply = {"error": f"the dispatcher failed: {exc}"}
        reply_to = request.get("reply_to")
        if reply is None or not isinstance(reply_to, str) or not reply_to:
            return
        try:
            self._reply(reply_to, {**reply, "corr": request.get("corr")})
        except Exception:  # the worker times out and gives the run up; the trail keeps it
            log.exception("an answer to a worker could not be sent")

    def _reply(self, to: str, body: dict[str, Any]) -> None:
        k = kombu()
        with self._send_lock:
            if self._out is None:
                self._out = k.Connection(self.broker, connect_timeout=10)
            try:
                k.Producer(self._out.default_channel).publish(
                    body, exchange="", routing_key=to, serializer="json", delivery_mode=1)
            except Exception:
                self._out.release()
                self._out = None
                raise
