"""The dispatcher's shared state: where it is in its life, and how much work is in flight.

Both are read by several threads (intake, the matcher thread, the runs) and changed in one
place each, so each is one small object rather than flags and counters spread over the parts.
"""

from __future__ import annotations

import threading
import time
from enum import IntEnum


class Stage(IntEnum):
    """The dispatcher's life, in the only order it moves through; a later stage implies the
    earlier ones (`CANCELLING` is also closed to callers)."""

    #: Taking events from callers and from callbacks.
    OPEN = 0
    #: `close()` was called: callers are done; what is queued, and what callbacks cause, runs.
    DRAINING = 1
    #: No event is taken any more (`emit` raises `DispatcherClosed`).
    CLOSED = 2
    #: Runs not yet started are recorded `cancelled` instead of run.
    CANCELLING = 3
    #: The trail stayed unwritable while closing: retries stop, a restart finishes the rest.
    ABANDONED = 4


class LifeCycle:
    """The current `Stage`; it only ever moves forward."""

    def __init__(self) -> None:
        self.stage = Stage.OPEN
        self._lock = threading.Lock()

    def advance(self, stage: Stage) -> bool:
        """Move to `stage`; False (and no change) if the dispatcher is already there or past."""
        with self._lock:
            if stage <= self.stage:
                return False
            self.stage = stage
            return True

    def reached(self, stage: Stage) -> bool:
        return self.stage >= stage


class InFlight:
    """Work taken and not finished, counted in one place; `wait_idle` waits for none.

    Units: an event from acceptance until it is matched and recorded; a firing from its hand-off
    to the executor until its outcome is recorded (also counted apart, as the backlog the
    matcher thread stays under); a rule swap until it is in force; a start-up task (settling
    a dead host's firings, reading its journal back) until done.
    """

    def __init__(self) -> None:
        # Counting takes the lock itself (a C call); only waking waiters goes through the
        # condition's Python methods.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._total = 0
        self._firings = 0
        self._waiters = 0  # callers in a wait below: only then is a change signalled
        self._idlers = 0  # callers in `wait_idle`, who want the work done now, not gathered

    @property
    def firings(self) -> int:
        """Firings handed to the executor whose outcome is not recorded yet."""
        return self._firings

    @property
    def awaited(self) -> bool:
        """Someone waits in `wait_idle`: a batch should not pause to gather more."""
        return self._idlers > 0

    def add(self, n: int = 1, *, firings: bool = False) -> None:
        with self._lock:
            self._total += n
            if firings:
                self._firings += n

    def done(self, n: int = 1, *, firings: bool = False) -> None:
        if not n:
            return
        with self._lock:  # the condition's own lock, taken without its Python methods
            self._total -= n
            if firings:
                self._firings -= n
            if self._waiters:
                self._changed.notify_all()

    def wait_idle(self, deadline: float | None) -> bool:
        """Wait until nothing is in flight, or `deadline` (monotonic) passes."""
        with self._changed:
            self._idlers += 1
            try:
                while self._total > 0:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._waiters += 1
                    try:
                        self._changed.wait(0.5 if left is None else min(left, 0.5))
                    finally:
                        self._waiters -= 1
            finally:
                self._idlers -= 1
        return True

    def wait_firings_below(self, limit: int, timeout: float) -> bool:
        """Wait up to `timeout` for fewer than `limit` firings in flight; True once so."""
        with self._changed:
            if self._firings < limit:
                return True
            self._waiters += 1
            try:
                return self._changed.wait_for(lambda: self._firings < limit, timeout)
            finally:
                self._waiters -= 1
