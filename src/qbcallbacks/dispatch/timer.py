"""Time events: which are due, for which live jobs, and the thread that waits for them.

Due events go through the dispatcher's intake like any other, so they are ordered with the
events around them. Which jobs are live is the matcher's to know: the timer asks it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from ..matching.clock import Clock
from ..matching.owner import Audience, Stamp, global_owner
from ..matching.schedule import Scheduler, TimeSpec, job_time_specs, time_specs
from ..model.events import Event, Job
from ..model.triggers import Trigger, TriggerNode

log = logging.getLogger("qbcallbacks.dispatch")


class TimeSink(Protocol):
    """Where due events go (the dispatcher's intake); may wait for room, never drops one.
    The stamp goes with the event through the journal, so a restart knows it again."""

    def put_time_event(self, event: Event, stamp: Stamp) -> None: ...


class LiveJobs(Protocol):
    """Who knows which jobs are live (the matcher); asked from the timer's threads."""

    def live_jobs(self) -> Collection[int]: ...


class Timer:
    """Owns the schedule; `start` runs the waiting thread."""

    def __init__(self, clock: Clock, sink: TimeSink, live: LiveJobs) -> None:
        self.clock = clock
        self._sink = sink
        self._live = live
        self._scheduler = Scheduler()
        self._lock = threading.Lock()  # the schedule
        self._polling = threading.Lock()  # one poll at a time, so due events keep their order
        self._wake = threading.Event()
        self._stopping = False
        self._ready = threading.Event()
        self._ready.set()
        self._thread = threading.Thread(target=self._loop, name="qbcallbacks-time",
                                        daemon=True)
        self._unsubscribe: Callable[[], None] = lambda: None

    def start(self, after: threading.Event | None = None) -> None:
        """Start raising; with `after`, nothing is raised before it is set (the journal's
        backlog is queued first, so an instant a dead host raised comes before the one the
        new start raises, and its owners take it there once)."""
        if after is not None:
            self._ready = after
        self._unsubscribe = self.clock.subscribe(self.poll)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._unsubscribe()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def set_triggers(self, triggers: Iterable[Trigger]) -> None:
        self.set_specs(time_specs(triggers))

    def set_specs(self, specs: set[TimeSpec]) -> None:
        """Schedule these (`time_specs` of the rules, worked out beforehand)."""
        with self._lock:
            self._scheduler.set_specs(specs, self.clock.now())
        self._wake.set()

    def set_global(self, callback_id: int, trigger: TriggerNode | None) -> None:
        """Schedule the time atoms of one global callback (None: it was removed). It owns
        its schedules alone, so one submitted after an instant it names was raised is owed
        that instant, and nobody else sees it again."""
        specs = set() if trigger is None else time_specs([trigger])
        with self._lock:
            changed = self._scheduler.set_owner(global_owner(callback_id), specs)
        if changed:
            self._wake.set()

    def audience(self, event: Event, stamp: Stamp) -> Audience | None:
        """Whose callbacks take an event this timer raised (called by the matcher thread as
        it takes the event, so in stream order); None: nobody's."""
        with self._lock:
            return self._scheduler.audience(event, stamp)

    def track(self, event: Event, job: Job | None = None) -> None:
        """Keep each job's own time triggers up to date (called by the matcher thread): a
        job's time triggers are scheduled while it is live."""
        removed = event.type == "job" and event.name == "removed"
        if removed or (job is not None and job.id):
            # Most events carry a job without callbacks of its own: nothing to parse, and the
            # timer thread is woken only when a schedule actually changed.
            own = job is not None and not removed and job.callbacks
            specs = job_time_specs(job) if own and job is not None else ()
            key = event.job if removed or job is None else job.id
            # Only this thread changes jobs' schedules, so it may ask without the lock.
            if not specs and not self._scheduler.owns_job(key):
                return
            with self._lock:
                changed = self._scheduler.set_job_specs(key, specs)
            if changed:
                self._wake.set()

    def poll(self) -> None:
        """Emit the time events due now; called by the thread and by manual clocks."""
        if self._stopping or not self._ready.is_set():
            return
        with self._polling:
            live = self._live.live_jobs()
            with self._lock:
                due = self._scheduler.raise_due(self.clock.now(), live)
            # Outside the schedule's lock: the matcher thread, which frees the room these
            # may wait for, takes that lock to track jobs.
            for raised in due:
                self._sink.put_time_event(raised.event, raised.stamp)
        self._wake.set()

    def settle(self, timeout: float | None) -> bool:
        """Raise what is due now once the journal's backlog is queued (False: it was not
        within `timeout`), so that an instant already due counts as work still to do rather
        than something the time thread raises a moment after a caller judged all idle."""
        if not self._thread.is_alive():  # not started: a replay's stream carries its time
            return True
        if not self._ready.wait(timeout):
            return False
        self.poll()
        return True

    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._step()
            except Exception:  # a failing step is reported; time keeps being watched
                log.exception("time events: a step failed; going on")
                self.clock.wait(self._wake, 1.0)

    def _step(self) -> None:
        # Clear first: a wake-up after this line is seen by the wait below.
        self._wake.clear()
        if self._stopping:
            return
        if not self._ready.is_set():
            self._ready.wait(1.0)  # real time: the backlog is being queued
            return
        with self._lock:
            nxt = self._scheduler.next_due()
        delay = 1.0 if nxt is None else nxt - self.clock.now()
        if delay > 0:
            # At most a second: the real clock may be set forward under us.
            self.clock.wait(self._wake, min(delay, 1.0))
            return
        self.poll()
