"""The matcher thread: from the intake's ordered stream to recorded firings handed to runs.

It takes events in emit order, asks the matcher which callbacks fire, has the recorder commit
the events with their firings, then hands each firing to the executor (or records it
`refused` when the job-code policy forbids it). Rule swaps are applied between two events,
so the matcher is only ever touched by this thread. Before any event it settles what a dead
host left, so a job's re-runs keep their place ahead of its new firings. It pauses while
`max_backlog` firings are in flight: a backlog then waits in the journal, not in memory.
No exception ends the thread: a failing batch is logged and the next one goes on.
A batch gathered from a trickle of events is matched and committed in small pieces with a
short sleep between: the thread with the next event (a socket reader, an `emit` caller)
then waits for the interpreter a few events' work, not the whole batch's.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from ..audit.records import PendingFiring
from ..audit.store import AuditError, EventRow
from ..matching.matcher import Firing, Matcher
from ..matching.owner import Audience, Stamp
from ..matching.rebuild import Check, Prepared, adopt, prepare, snapshot
from ..matching.schedule import TimeSpec
from ..model._base import trusted
from ..model.events import Event, Job
from ..model.rules import Rule
from ..runtimes.api import RunResult, inline_code
from ..runtimes.policy import job_code_refusal
from .executor import Executor
from .intake import Accepted, Intake, Item, Swap
from .recorder import Recorder
from .recovery import Recovery
from .settings import DispatcherSettings
from .state import InFlight, LifeCycle, Stage
from .timer import Timer

log = logging.getLogger("qbcallbacks.dispatch")

#: In a batch gathered from a trickle: events matched, and events committed, between two
#: moments the matcher thread lets go of the interpreter, and how long it then sleeps.
YIELD_EVERY, RECORD_EVERY, YIELD_FOR = 4, 64, 5e-5


class MatchSource(Protocol):
    """What the dispatcher needs from the matcher: `observe` and `set_rules` are only ever
    called from the matcher thread; `live_jobs` from the timer's threads too."""

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        """The firings of one event, in firing order; `job` updates what is known of it."""
        ...

    def observe_for(self, event: Event, audience: Audience) -> Sequence[Firing]:
        """The firings of a time event the engine raised, for the callbacks of the owners
        `audience` names only; it never makes a job live."""
        ...

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace the universal rules; the state of rules kept unchanged survives."""
        ...

    def live_jobs(self) -> Collection[int]:
        """The jobs seen and not removed: those time events are raised about."""
        ...


class MatcherSource:
    """The compiled `Matcher` as a `MatchSource`; the lock lets the timer read its jobs."""

    def __init__(self, matcher: Matcher | None = None) -> None:
        self.matcher = matcher if matcher is not None else Matcher()
        self._lock = threading.Lock()

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        with self._lock:
            return self.matcher.observe(event, job)

    def observe_for(self, event: Event, audience: Audience) -> Sequence[Firing]:
        with self._lock:
            return self.matcher.observe_for(event, audience)

    def observe_many(self, events: Sequence[tuple[Event, Job | None]]
                     ) -> list[Sequence[Firing] | Exception]:
        """Each event's firings in turn, under one taking of the lock; an event the matcher
        fails on gets the exception in its place and the others go on. A source whose
        `observe` was replaced (a subclass, a patch) is asked through it, event by event."""
        own = type(self).observe is _PLAIN_OBSERVE
        out: list[Sequence[Firing] | Exception] = []
        with self._lock if own else contextlib.nullcontext():
            observe = self.matcher.observe if own else self.observe
            for event, job in events:
                try:
                    out.append(observe(event, job))
                except Exception as exc:  # reported by the caller, event by event
                    out.append(exc)
        return out

    def set_rules(self, rules: Sequence[Rule]) -> None:
        with self._lock:
            self.matcher.replace_rules(rules)

    def live_jobs(self) -> Collection[int]:
        with self._lock:
            return self.matcher.live_jobs

    def prepare(self, rules: Sequence[Rule], check: Check) -> Prepared:
        """Build `rules` off the matcher thread (`check` may raise to abandon the build)."""
        with self._lock:
            old = snapshot(self.matcher)
        return prepare(old, rules, check)

    def adopt(self, prepared: Prepared) -> None:
        """Put a prepared set in force: a swap of references, not a build."""
        with self._lock:
            adopt(self.matcher, prepared)


def pending_firing(seq: int, ordinal: int, firing: Firing) -> PendingFiring:
    """The record of a firing at match time (built from valid data: no validation)."""
    rule, cb = firing.rule, firing.job_callback
    if rule is not None:
        directory, language, code = rule.directory, rule.language, None
    else:
        assert cb is not None  # a firing is of a rule or of a job callback
        directory, language, code = "", cb.language, inline_code(cb.language, cb.code)
    return trusted(PendingFiring, event_seq=seq, ordinal=ordinal, event=firing.event,
                   job=firing.job, callback=firing.callback, directory=directory,
                   trigger=firing.trigger, language=language, code=code, id=0)


#: The class's own `observe`: one replaced later (on a subclass or the class) is asked.
_PLAIN_OBSERVE = MatcherSource.observe


class MatchLoop:
    """The matcher thread and what it owns: the matcher, the session's event numbers."""

    def __init__(self, intake: Intake, source: MatchSource, recorder: Recorder,
                 executor: Executor, timer: Timer, work: InFlight, life: LifeCycle,
                 settings: DispatcherSettings, *, rebuilt: MatchSource | None = None,
                 committed: Callable[[bool], None] | None = None) -> None:
        self._intake, self._source, self._recorder = intake, source, recorder
        #: Told after each batch whether its events and firings are in the trail.
        self._committed = committed
        self._executor, self._timer = executor, timer
        self._work, self._life, self.settings = work, life, settings
        self._seq = 0  # events matched in this session
        self._trickle = False  # the batch in hand was gathered from a trickle of events
        #: Events lost to a fault of ours, each logged: the matcher failed on them (they are
        #: recorded without firings) or their batch could not be recorded.
        self.lost_events = 0
        self._thread: threading.Thread | None = None
        #: The compiled matcher under `source` (`rebuilt`, when `source` wraps it), which takes
        #: sets built off this thread; None: `set_rules` builds them here.
        rebuilt = source if rebuilt is None else rebuilt
        self.rebuilt = rebuilt if isinstance(rebuilt, MatcherSource) else None

    def apply(self, rules: tuple[Rule, ...], prepared: Prepared | None = None,
              specs: set[TimeSpec] | None = None) -> None:
        """Put rules in force (from the matcher thread, or before it starts); with what a
        reload built off this thread, only references are swapped here."""
        if prepared is not None and self.rebuilt is not None:
            self.rebuilt.adopt(prepared)
        else:
            self._source.set_rules(rules)
        if specs is not None:
            self._timer.set_specs(specs)
        else:
            self._timer.set_triggers(r.trigger for r in rules)

    def start(self, recovery: Recovery, rules: Sequence[Rule]) -> None:
        self._work.add()  # until the orphans are settled
        self._thread = threading.Thread(target=self._loop, args=(recovery, rules),
                                        name="qbcallbacks-matcher", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _loop(self, recovery: Recovery, rules: Sequence[Rule]) -> None:
        try:
            for page in self._recorder.settle(recovery, rules):
                for firing in page:
                    self._hand_on(firing)
                self._wait_room()
        except Exception:  # reported; what was not settled is found at the next start
            log.exception("re-running the firings a previous host left failed")
        finally:
            self._work.done()
        while True:
            try:
                self._wait_room()
                batch = self._intake.take(self.settings.batch, 0.05)
                if not batch:
                    self._recorder.flush()
                elif self._process(self._gather(batch)):
                    return
            except Exception:  # reported; the loop goes on with the next items
                log.exception("matcher thread: a batch failed; going on")

    def _gather(self, batch: list[Item]) -> list[Item]:
        """A small batch, and what arrives in the next `gather` seconds (up to `batch`);
        not while a caller waits for idleness, who wants the work done rather than cheap."""
        most, wait = self.settings.batch, self.settings.gather
        self._trickle = bool(wait and len(batch) < most // 4 and batch[-1] is not None
                             and not self._work.awaited)
        if self._trickle:
            time.sleep(wait)
            batch += self._intake.take(most - len(batch), 0)
        return batch

    def _wait_room(self) -> None:
        limit = self.settings.max_backlog
        while not (self._work.wait_firings_below(limit, 0.1)
                   or self._life.reached(Stage.CANCELLING)):
            pass

    def _hand_on(self, firing: PendingFiring) -> None:
        """Count a recorded firing in flight and give it to the executor (or refuse it)."""
        self._work.add(firings=True)
        # A global callback (job 0) was let in by the site: its code needs no job permission.
        refusal = job_code_refusal(firing.language,  # inline code is the job's own
                                   job_specific=firing.code is not None and firing.job != 0,
                                   allowed=self.settings.allow_job_code)
        if refusal is not None:
            self._recorder.complete(firing.id, RunResult(status="refused", error=refusal))
            return
        try:
            self._executor.submit(firing)
        except Exception as exc:  # not taken: this firing's failure, and its count released
            log.exception("the executor did not take firing %d", firing.id)
            self._recorder.complete(firing.id, RunResult(
                status="crashed", error=f"the executor did not take this run: {exc!r}"))

    def _process(self, batch: list[Item]) -> bool:
        """Match and record a batch; True when it held the end of the stream."""
        accepted: list[Accepted] = []
        stop = False
        for item in batch:
            if isinstance(item, Accepted):
                accepted.append(item)
                continue
            self._record(accepted)
            accepted = []
            if item is None:
                stop = True
            else:
                self._swap(item)
        self._record(accepted)
        if stop:
            self._recorder.flush()
        return stop

    def _swap(self, item: Swap) -> None:
        try:
            self.apply(item.rules, item.prepared, item.specs)
            item.done.set_result(None)
        except Exception as exc:  # a bad swap must not kill the matcher thread
            item.done.set_exception(exc)
        finally:
            self._work.done()

    def _observe(self, accepted: list[Accepted]) -> list[Sequence[Firing] | Exception]:
        """The firings of each event in order (or what the matcher raised on it), each event
        also told to the timer: the whole run at once when it holds only events from outside
        (whose matching does not ask the timer) and the source can take them so."""
        many, track = getattr(self._source, "observe_many", None), self._timer.track
        if many is not None and all(a.stamp is None for a in accepted):
            found: list[Sequence[Firing] | Exception] = many([(a.event, a.job)
                                                               for a in accepted])
            for a in accepted:
                track(a.event, a.job)
            return found
        out: list[Sequence[Firing] | Exception] = []
        for a in accepted:
            track(a.event, a.job)
            try:
                stamp = a.stamp
                out.append(self._source.observe(a.event, a.job) if stamp is None
                           else self._observe_raised(a, stamp))
            except Exception as exc:  # reported by the caller
                out.append(exc)
        return out

    def _observe_yielding(self, accepted: list[Accepted]) -> list[Sequence[Firing] | Exception]:
        """`_observe`; for a batch gathered from a trickle, `YIELD_EVERY` events at a time with
        a sleep between. Matching is pure Python and such a batch can hold hundreds of events
        that came one at a time: the next one's sender (a socket reader, an `emit` caller)
        would wait for the interpreter until the whole batch is matched or the switch interval
        (5 ms) ends. Letting go of the lock alone does not hand it over (this thread takes it
        back before the waiter wakes); a sleep does. A heavy stream is matched without: there
        the matcher thread has no time to spare, and the emitters are not waiting one by one."""
        if not self._trickle or len(accepted) <= YIELD_EVERY:
            return self._observe(accepted)
        found: list[Sequence[Firing] | Exception] = []
        for at in range(0, len(accepted), YIELD_EVERY):
            if at:
                time.sleep(YIELD_FOR)
            found += self._observe(accepted[at:at + YIELD_EVERY])
        return found

    def _observe_raised(self, a: Accepted, stamp: Stamp) -> Sequence[Firing]:
        """An event the engine raised goes to the owners of its schedule that have not seen
        its instant (`Scheduler.audience`); one from outside goes to every callback."""
        audience = self._timer.audience(a.event, stamp)
        return () if audience is None else self._source.observe_for(a.event, audience)

    def _record(self, accepted: list[Accepted]) -> None:
        """Match a run of events, commit them with their firings, hand the firings on."""
        if not accepted:
            return
        if self._trickle and len(accepted) > RECORD_EVERY:  # see the module
            for at in range(0, len(accepted), RECORD_EVERY):
                if at:
                    time.sleep(YIELD_FOR)
                self._record(accepted[at:at + RECORD_EVERY])
            return
        events: list[EventRow] = []
        pending: list[PendingFiring] = []
        seq = self._seq
        for a, found in zip(accepted, self._observe_yielding(accepted), strict=True):
            if isinstance(found, Exception):  # a matcher bug must not stop the stream
                self.lost_events += 1
                log.error("matcher failed on %s", a.event.format(), exc_info=found)
                found = ()
            events.append((seq, a.event, a.job_json))
            if found:
                pending.extend(pending_firing(seq, i, f) for i, f in enumerate(found))
            seq += 1
        self._seq = seq
        try:
            recorded = self._recorder.record(events, pending, accepted[-1].end,
                                             accepted[-1].jseq)
            ok = True
        except Exception as exc:  # an AuditError: closing gave up, the journal keeps them
            if not isinstance(exc, AuditError):  # a fault of ours: lost, and said so
                self.lost_events += len(accepted)
                log.exception("recording %d events failed; they are lost", len(accepted))
            recorded, ok = [], False
        if self._committed is not None:
            self._committed(ok)
        try:
            for firing in recorded:
                self._hand_on(firing)
        finally:
            self._work.done(len(accepted))  # never left counted: a drain would wait for ever
