"""Answering workers' `qb` calls within the run's deadline, whatever the supervisor does.

A worker's `qb` call is answered by the host's supervisor, which may be slow or may hang (a
database, a network). The run must still end at its deadline, so the call is answered on one
of a few daemon threads while the run's thread waits for it no longer than the deadline. At
the deadline the run gives up (its worker is then killed): a call not yet started is skipped,
and the answer of one in progress is dropped when it comes. The threads are daemons, so a
supervisor that never answers cannot hold the host's exit either, and they are bounded: a
hung supervisor holds at most `limit` of them, and further calls wait for one, no longer than
their own deadlines.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model.supervisor import HostError, asking_until

Answer = Callable[[], dict[str, Any]]
log = logging.getLogger("qbcallbacks.runtimes")


def reply_to(answer: Callable[[str, list[Any]], Any], message: dict[str, Any],
             deadline: float) -> dict[str, Any]:
    """The reply to a worker's `qb` call message, due by `deadline`; never raises."""
    fn, args = message.get("fn"), message.get("args")
    if not isinstance(fn, str) or not isinstance(args, list):
        return {"op": "reply", "error": "malformed qb call"}
    try:
        return {"op": "reply", "value": asking_until(deadline, answer, fn, args)}
    except HostError as exc:
        return {"op": "reply", "error": str(exc)}
    except Exception as exc:  # the supervisor's own fault must not end the host either
        log.exception("supervisor failed answering qb.%s", fn)
        return {"op": "reply", "error": f"the supervisor failed: {type(exc).__name__}: {exc}"}


class _Call:
    __slots__ = ("abandoned", "done", "reply", "work")

    def __init__(self, work: Answer) -> None:
        self.work = work
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.abandoned = False


class Answerers:
    """Up to `limit` daemon threads that compute replies, started as calls need them."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._free = 0
        self._closed = False

    def ask(self, work: Answer, deadline: float) -> dict[str, Any] | None:
        """The reply `work` computes, or None if the deadline passed first."""
        call = _Call(work)
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime is closed")
            if self._free > 0:
                self._free -= 1
            elif self._threads < self._limit:
                self._threads += 1
                threading.Thread(target=self._serve, daemon=True,
                                 name="qbcallbacks-qb-answer").start()
        self._calls.put(call)
        if call.done.wait(max(0.0, deadline - time.monotonic())):
            return call.reply
        call.abandoned = True  # not started: skipped; started: its answer is dropped
        return None

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            if not call.abandoned:
                call.reply = call.work()
                call.done.set()
            with self._lock:
                self._free += 1

    def close(self) -> None:
        """End the idle threads; one still answering ends when its supervisor returns."""
        with self._lock:
            self._closed = True
            count, self._threads = self._threads, 0
        for _ in range(count):
            self._calls.put(None)
