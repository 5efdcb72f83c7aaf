"""Ordering and limits of local runs: per-job lanes feeding per-runtime pools.

Ordering (a decision the dispatcher documents): the firings of one *attached job* run one at a
time, in the order the matcher produced them, across events too; firings of different jobs run
concurrently. That keeps what matters for a job (its callbacks see the job's events in order,
and the second callback of an event sees what the first did to the job) without serialising
the farm.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping

from ..audit.records import PendingFiring
from ..model.languages import runtime_extension

log = logging.getLogger("qbcallbacks.dispatch")


class _Pool:
    """A fixed set of worker threads taking calls from one queue: a run costs one put and
    one get, with no future or thread bookkeeping per call (nobody waits on a run's end)."""

    def __init__(self, size: int, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[PendingFiring], None], PendingFiring]
                                       | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
                         for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[PendingFiring], None], run: PendingFiring) -> None:
        self._calls.put((fn, run))

    def shutdown(self) -> None:
        """Let the calls queued so far run, then stop the workers and wait for them."""
        for _ in self._threads:
            self._calls.put(None)
        for t in self._threads:
            t.join()

    def _work(self) -> None:
        get = self._calls.get
        while (call := get()) is not None:
            try:
                call[0](call[1])
            except Exception:  # the caller completes its firing whatever happens
                log.exception("a run failed outside its own handling")


class Lanes:
    """Per-job FIFO lanes feeding per-runtime thread pools under one overall limit."""

    def __init__(self, execute: Callable[[PendingFiring], None], *, overall: int,
                 per_runtime: Mapping[str, int], default_per_runtime: int) -> None:
        self._execute = execute
        self._lock = threading.Lock()
        #: Per job with a run in progress, the runs waiting behind it; None while none wait
        #: (most jobs: thousands of runs in flight need no queue object each).
        self._lanes: dict[int, deque[PendingFiring] | None] = {}
        self._overall = threading.BoundedSemaphore(max(1, overall))
        self._pools: dict[str, _Pool] = {}
        self._per_runtime = dict(per_runtime)
        self._default = max(1, default_per_runtime)
        self._closed = False

    def submit(self, run: PendingFiring) -> None:
        with self._lock:
            lanes = self._lanes
            if run.job in lanes:
                lane = lanes[run.job]
                if lane is None:
                    lanes[run.job] = deque((run,))
                else:
                    lane.append(run)
                return
            lanes[run.job] = None
        self._start(run)

    def cancel_waiting(self) -> list[PendingFiring]:
        """Take every run still waiting in a lane (not started); the lanes stay open so that
        runs in progress finish normally."""
        with self._lock:
            taken = [r for lane in self._lanes.values() if lane for r in lane]
            for job in self._lanes:
                self._lanes[job] = None
        return taken

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown()

    def _pool(self, language: str) -> _Pool:
        ext = runtime_extension(language)
        with self._lock:
            pool = self._pools.get(ext)
            if pool is None:
                size = self._per_runtime.get(ext, self._default)
                pool = _Pool(max(1, size), f"qbcallbacks-{ext}")
                self._pools[ext] = pool
        return pool

    def _start(self, run: PendingFiring) -> None:
        self._pool(run.language).submit(self._body, run)

    def _body(self, run: PendingFiring) -> None:
        try:
            with self._overall:
                self._execute(run)
        finally:
            with self._lock:
                lane = self._lanes.get(run.job)
                nxt = lane.popleft() if lane else None
                if nxt is None:
                    self._lanes.pop(run.job, None)
            if nxt is not None:
                self._start(nxt)
