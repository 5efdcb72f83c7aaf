"""The intake: how events get to the matcher thread, in order, durably, within a bound.

`emit` appends the event to the journal (so it survives a killed host), then queues it,
waiting up to `emit_timeout` for room and then raising `BackPressureError`: an event is never
dropped silently. Time events, rule swaps and the events a dead host journalled but never
matched come the same way, so the matcher thread sees one ordered stream. The queue's room
is given back when the matcher thread takes an event.

The queue is a plain list kept under the lock that orders the journal: an `emit` appends to
it while it holds that lock anyway, and the matcher thread takes everything waiting in one
go, so the hand-off costs no queue of its own per event. Nobody is woken per event: an
`emit` signals only when the matcher thread is idle waiting, and the matcher thread wakes
an `emit` only when one waits for room in a full queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ..audit.journal import JournalEntry, JournalError, JournalKey, Position
from ..audit.store import EventJournal
from ..errors import QbCallbacksError
from ..matching.owner import STAMP_TAG, Stamp, stamp_key, stamp_of
from ..matching.rebuild import Prepared
from ..matching.schedule import TimeSpec
from ..model.events import Event, Job
from ..model.rules import Rule
from .settings import BackPressureError, DispatcherClosed, DispatcherSettings, DispatcherUnavailable
from .state import InFlight, LifeCycle, Stage

log = logging.getLogger("qbcallbacks.dispatch")


@dataclass(slots=True)
class Accepted:
    """An event taken by `emit` (or read back from the journal) on its way to the matcher."""

    #: Its number in the journal (events are numbered per session when matched).
    jseq: int
    event: Event
    job: Job | None
    job_json: str | None
    end: Position
    #: What the engine raised a time event for (None: an event from outside).
    stamp: Stamp | None = None


@dataclass(slots=True)
class Swap:
    """New rules for the matcher thread to put in force between two events."""

    rules: tuple[Rule, ...]
    done: Future[None]
    #: What a reload built off the matcher thread (None: build here from `rules`).
    prepared: Prepared | None = None
    #: The time schedules the rules name, when already worked out.
    specs: set[TimeSpec] | None = None


Item = Accepted | Swap | None  # None stops the matcher thread


class Faulty(Protocol):
    """A part whose fault stops intake (the recorder: an unwritable trail)."""

    problem: tuple[str, float] | None


class Intake:
    """The journal and the bounded queue in front of the matcher thread."""

    def __init__(self, journal: EventJournal, settings: DispatcherSettings, life: LifeCycle,
                 work: InFlight, trail: Faulty) -> None:
        self.journal, self.settings = journal, settings
        self._life, self._work, self._trail = life, work, trail
        self._lock = threading.Lock()  # journal order is queue order
        self._items: list[Item] = []  # queued, in order (under the lock)
        self._freed = threading.Condition(self._lock)  # room given back
        self._queued = threading.Condition(self._lock)  # items queued for an idle taker
        self._held = 0  # events queued and not yet taken (under the lock)
        self._waiting = 0  # callers waiting for room (under the lock)
        self._idle = False  # the matcher thread waits for an item (under the lock)
        self._others = 0  # items queued that are not events (under the lock)
        self._replayed = threading.Event()
        self._dumped: dict[int, tuple[Job, str]] = {}  # id(job): the job and its JSON
        #: The journal's fault and since when, cleared by the next emit that works.
        self.problem: tuple[str, float] | None = None

    @property
    def replayed(self) -> threading.Event:
        """Set once the journal's unmatched events are all queued (at once when none)."""
        return self._replayed

    @property
    def depth(self) -> int:
        """Events accepted and not yet taken by the matcher thread."""
        return len(self._items)

    def emit(self, event: Event, job: Job | None, key: JournalKey) -> None:
        """See `Dispatcher.emit`."""
        if self._life.reached(Stage.CLOSED):
            raise DispatcherClosed("the dispatcher is closed; the event was not taken")
        problem = self._trail.problem
        if problem is not None:
            raise DispatcherUnavailable(f"event {event.format()} not accepted: {problem[0]}")
        _check_key(key)
        timeout = self.settings.emit_timeout
        if not self._replayed.is_set() and not self._replayed.wait(timeout):
            raise BackPressureError(f"event {event.format()} not accepted: events a previous "
                                    "host accepted are still being read back from the journal")
        try:
            self._accept(event, job, key, timeout)
        except JournalError as exc:
            self.problem = (str(exc), time.time())
            raise DispatcherUnavailable(f"event {event.format()} not accepted: {exc}") from exc
        self.problem = None

    def emit_many(self, items: Sequence[tuple[Event, Job | None, JournalKey]],
                  ) -> tuple[int, Exception | None]:
        """`emit` for each item in order, the checks made and the lock taken once for all:
        how many were taken (journalled and queued), and the error the first one not taken
        would have raised from `emit` (None: all were). Nothing after it is tried."""
        if not items:
            return 0, None
        try:
            self.emit(*items[0])
        except Exception as exc:  # what `emit` raises for the first, as for any other
            return 0, exc
        timeout = self.settings.emit_timeout
        rest = [(event, job, None if job is None else self._job_json(job), key)
                for event, job, key in items[1:]]
        self._work.add(len(rest))
        done = 0
        try:
            with self._lock:
                try:
                    for event, job, job_json, key in rest:
                        _check_key(key)
                        self._enqueue(event, job, job_json, key, timeout)
                        done += 1
                finally:
                    if self._idle and done:
                        self._queued.notify()
        except JournalError as exc:
            self.problem = (str(exc), time.time())
            return 1 + done, DispatcherUnavailable(f"event {rest[done][0].format()} not "
                                                   f"accepted: {exc}")
        except Exception as exc:
            return 1 + done, exc
        finally:
            self._work.done(len(rest) - done)
        return len(items), None

    def put_time_event(self, event: Event, stamp: Stamp) -> None:
        """Our own events: wait for room rather than fail, so a due instant is never lost;
        the stamp is journalled in the key's place, so a restart reads it back."""
        try:
            self._accept(event, None, stamp_key(stamp), None, stamp)
        except JournalError as exc:
            log.error("time event %s not journalled: %s", event.format(), exc)

    def swap(self, rules: tuple[Rule, ...], prepared: Prepared | None = None,
             specs: set[TimeSpec] | None = None) -> Future[None]:
        """Queue new rules; the future is done once they are in force."""
        item = Swap(rules, Future(), prepared, specs)
        self._work.add()
        self._put(item)
        return item.done

    def replay(self, entries: Iterator[JournalEntry]) -> None:
        """Queue the journal's unmatched events on a thread, in order, each once there is
        room for it: a backlog of any size is read as the matcher takes it, never at once.
        `emit` waits until they are all queued. A failure is reported; what was not put back
        is matched at the next start."""
        self._work.add()
        threading.Thread(target=self._replay, args=(entries,), name="qbcallbacks-replay",
                         daemon=True).start()

    def take(self, most: int, timeout: float) -> list[Item]:
        """Up to `most` items in order, waiting up to `timeout` for the first (none: [])."""
        with self._lock:
            items = self._items
            if not items:
                self._idle = True
                try:
                    self._queued.wait(timeout)
                finally:
                    self._idle = False
                items = self._items
                if not items:
                    return []
            if len(items) <= most:
                batch, self._items = items, []
            else:
                batch = items[:most]
                del items[:most]
            taken = len(batch)
            if self._others:  # a rule swap or the end among them: count the events
                taken = sum(type(item) is Accepted for item in batch)
                self._others -= len(batch) - taken
            if taken:
                self._held -= taken
                if self._waiting:
                    self._freed.notify_all()
        return batch

    def stop(self) -> None:
        """Queue the end: the matcher thread stops when it gets there."""
        self._put(None)

    def _put(self, item: Item) -> None:
        """Queue something that is not an event (the end, a rule swap) behind the events."""
        with self._lock:
            self._others += 1
            self._items.append(item)
            if self._idle:
                self._queued.notify()

    def _accept(self, event: Event, job: Job | None, key: JournalKey,
                timeout: float | None, stamp: Stamp | None = None) -> None:
        """Journal and queue an event once there is room, waiting up to `timeout` (None: for
        ever) for it; on failure nothing is queued or counted."""
        job_json = None if job is None else self._job_json(job)
        self._work.add()
        try:
            with self._lock:
                self._enqueue(event, job, job_json, key, timeout, stamp)
                if self._idle:
                    self._queued.notify()
        except BaseException:
            self._work.done()
            raise

    def _enqueue(self, event: Event, job: Job | None, job_json: str | None, key: JournalKey,
                 timeout: float | None, stamp: Stamp | None = None) -> None:
        """Journal and queue one event, under the lock, once there is room for it."""
        if self._held >= self.settings.queue_size:
            self._wait_room(event, timeout)
        seq, end = (self.journal.append(event, job_json) if key is None
                    else self.journal.append(event, job_json, key))
        self._held += 1
        self._items.append(Accepted(seq, event, job, job_json, end, stamp))

    def _wait_room(self, event: Event | None, timeout: float | None) -> None:
        """Wait (holding the lock) until the queue has room; `BackPressureError` after
        `timeout` seconds."""
        self._waiting += 1
        try:
            room = self._freed.wait_for(lambda: self._held < self.settings.queue_size, timeout)
        finally:
            self._waiting -= 1
        if not room:
            what = event.format() if event is not None else "an event"
            raise BackPressureError(
                f"event {what} not accepted: {self.settings.queue_size} events are "
                f"waiting and none was taken in {timeout:g} s; the supervisor must retry or "
                "slow down")

    def _job_json(self, job: Job) -> str:
        """The job's JSON, dumped once per job object: a job named by id event after
        event is journaled with each, and its (frozen) object is the same until it changes."""
        found = self._dumped.get(id(job))
        if found is not None and found[0] is job:
            return found[1]
        if len(self._dumped) >= 4096:
            self._dumped.clear()
        text = job.model_dump_json()
        self._dumped[id(job)] = (job, text)
        return text

    def _replay(self, entries: Iterator[JournalEntry]) -> None:
        try:
            for entry in entries:
                job = None if entry.job_json is None else Job.model_validate_json(entry.job_json)
                with self._lock:
                    if self._held >= self.settings.queue_size:
                        self._wait_room(None, None)
                    self._work.add()
                    self._held += 1
                    self._items.append(Accepted(entry.seq, entry.event, job, entry.job_json,
                                                entry.end, stamp_of(entry.key)))
                    if self._idle:
                        self._queued.notify()
        except Exception:
            log.exception("reading the journal back failed")
        finally:
            self._replayed.set()
            self._work.done()


def _check_key(key: JournalKey) -> None:
    """A caller's key may not pass for the engine's own time stamps."""
    if isinstance(key, list) and key[:1] == [STAMP_TAG]:
        raise QbCallbacksError(f"a key may not start with {STAMP_TAG!r}: the engine's "
                               "own time events are journalled with it")
