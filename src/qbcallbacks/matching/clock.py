"""The Qube clock: Unix time minus 946702800 (2000-01-01 05:00 UTC), behind an injectable clock.

Time triggers name instants in Qube time. Whether a time event is due is always asked of a
`Clock`, never of the wall clock directly, so tests drive time with a `ManualClock` instead of
sleeping, and a replay runs on a `StreamClock` that only its stream's time events move. (The
wall clock still stamps records: when a firing was queued, started and finished.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ..model.events import Event
from ..model.triggers import TIME_TYPES

#: Unix time of Qube time 0.
QUBE_EPOCH = 946702800


def to_qube(unix_time: float) -> float:
    """Qube time of a Unix instant."""
    return unix_time - QUBE_EPOCH


def from_qube(qube_time: float) -> float:
    """Unix time of a Qube instant."""
    return qube_time + QUBE_EPOCH


@runtime_checkable
class Clock(Protocol):
    """Where the current time comes from, and how a waiting thread learns that it moved."""

    def now(self) -> float:
        """Unix time in seconds."""
        ...

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        """Sleep up to `seconds` of this clock's time or until `wake` is set; True if woken."""
        ...

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` whenever time jumps (manual clocks); returns an unsubscribe."""
        ...


class SystemClock:
    """The real clock; time never jumps, so nobody is ever notified."""

    def now(self) -> float:
        return time.time()

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        return wake.wait(max(0.0, seconds))

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        return lambda: None


class ManualClock:
    """A clock that moves only when told to: tests set the time and listeners react at once."""

    def __init__(self, start: float = from_qube(1_000_000)) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now

    def qube_now(self) -> float:
        return to_qube(self._now)

    def wait(self, wake: threading.Event, seconds: float) -> bool:
        # Manual time never passes by itself: waiting means waiting for a wake-up.
        return wake.wait()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def set(self, unix_time: float) -> None:
        """Jump to `unix_time` (never backwards) and tell every listener."""
        with self._lock:
            self._now = max(self._now, unix_time)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)


class StreamClock(ManualClock):
    """The clock of a replay: it stands at the instant of the latest time event of the stream
    and never moves by itself, so the wall clock cannot add anything to a replay.

    A `time`/`globaltime` event moves it to its instant; a `repeat`/`globalrepeat` event
    carries its series' first instant, which moves it at most that far (never back).
    """

    def __init__(self, start: float = from_qube(0)) -> None:
        super().__init__(start)

    def observe(self, event: Event) -> None:
        if event.type not in TIME_TYPES or event.extra is None:
            return
        head = event.extra.split("-", 1)[0]
        try:
            instant = float(head)
        except ValueError:
            return
        if instant == instant and abs(instant) != float("inf") and from_qube(instant) > self.now():
            self.set(from_qube(instant))
