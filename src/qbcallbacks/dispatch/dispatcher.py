"""The dispatcher a supervisor embeds: `emit(event)` returns at once, callbacks run behind it.

Pipeline: `emit` appends the event to the journal (so it survives a killed host), then queues
it (waiting up to `emit_timeout` for room, then raising `BackPressureError`: an event is never
dropped silently). One matcher thread takes events in emit order, asks the matcher which
callbacks fire, commits the events, the pending firings and the journal position to the audit
trail in one transaction, then hands the firings to per-job lanes that feed per-runtime pools
under an overall limit (`lanes`, `runner`). Completions are committed in batches.

Reloads are loaded off the matcher thread (`reload`) and swapped in through the queue, like
time events (`timer`), so they are ordered with the events around them and the matcher is only
ever touched by its own thread. A start finishes what a dead host left (`recovery`).

Faults: a failing audit write is retried with backoff; meanwhile `emit` raises
`DispatcherUnavailable` naming the cause and `health` says so; work resumes by itself. No
thread dies of an exception: each loop logs it (logger `qbcallbacks.dispatch`) and goes on.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..audit.backends import open_audit, open_journal
from ..audit.journal import JournalEntry, JournalError, JournalKey
from ..audit.records import FiringRecord, PendingFiring
from ..audit.store import AuditError, AuditStore
from ..config.load import expand_callback_path
from ..config.qbconf import read_qbconf
from ..config.watch import Watcher
from ..errors import Diagnostic
from ..matching.clock import Clock, SystemClock
from ..matching.matcher import Matcher
from ..model.events import Event, Job
from ..model.rules import Rule
from ..model.supervisor import Supervisor
from ..runtimes.api import PythonMode, Runtime
from ..runtimes.policy import job_code_refusal
from .intake import Accepted, Item, MatcherSource, MatchSource, Swap, pending_firing, replay
from .lanes import Lanes
from .recovery import Orphans, recover, settle
from .reload import DiagnosticsHandler, RuleBook
from .runner import Runner, build_runtimes
from .settings import (
    BackPressureError,
    DispatcherClosed,
    DispatcherConfig,
    DispatcherSettings,
    DispatcherUnavailable,
    Health,
)
from .timer import Timer

__all__ = ["BackPressureError", "Dispatcher", "DispatcherClosed", "DispatcherConfig",
           "DispatcherSettings", "DispatcherUnavailable", "Health", "MatchSource",
           "MatcherSource", "build_runtimes"]

log = logging.getLogger("qbcallbacks.dispatch")


class Dispatcher:
    """Matches events to callbacks and runs them without blocking the caller.

    Build it with the callback path and a `Supervisor`; `emit` events; `close()` at the end
    (or use it as a context manager). `wait_idle()` waits until everything emitted so far,
    and everything the callbacks caused, has run.

    `audit` is the trail (a path or an open `AuditStore`; its journal lives next to it in
    `<db>.events/`); with none, the trail and journal go to a temporary directory removed
    when the dispatcher is garbage-collected: nothing is ever written to the current
    directory. `settings` (a `DispatcherSettings`, alias `DispatcherConfig`, also accepted as
    `config`) holds every limit and policy; the collaborators are optional replacements.

    In-process mode runs Python callbacks inside this process: one that calls `os._exit` or
    crashes the interpreter takes the host down. The run is counted before it starts, so the
    next start re-runs it at most `max_reruns` times, then marks it `lost`;
    `previous_run_died` tells the caller that the last host did not close.
    """

    def __init__(self, callback_path: Iterable[str] | None, supervisor: Supervisor, *,
                 mode: PythonMode = "isolated", settings: DispatcherSettings | None = None,
                 audit: AuditStore | str | Path | None = None,
                 matcher: MatchSource | None = None,
                 runtimes: Mapping[str, Runtime] | None = None, clock: Clock | None = None,
                 env: Mapping[str, str] | None = None, watch: bool = False,
                 on_diagnostics: DiagnosticsHandler | None = None,
                 config: DispatcherSettings | None = None) -> None:
        self.settings = s = settings or config or DispatcherSettings()
        self.supervisor = supervisor
        self.directories = expand_callback_path(callback_path, env)
        self.clock: Clock = clock or SystemClock()
        self._matcher: MatchSource = (matcher if matcher is not None
                                      else MatcherSource(Matcher(attach=s.attach)))
        self._own_runtimes = runtimes is None
        self._runner = Runner(runtimes if runtimes is not None else build_runtimes(
            supervisor, mode=mode, pool_sizes=s.per_runtime), s, self._count_attempt)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if audit is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="qbcallbacks-")
            audit = Path(self._tmp.name) / "audit.db"
        self._own_audit = not isinstance(audit, AuditStore)
        self.audit = audit if isinstance(audit, AuditStore) else open_audit(
            audit, busy_timeout=s.busy_timeout, synchronous=s.synchronous)
        self.session = self.audit.begin_session(note=",".join(self.directories))
        self.journal = open_journal(self.audit, fsync=s.synchronous == "full")
        if self.audit.first_session:
            self.journal.discard()  # left over from a trail that was deleted
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._room = threading.Semaphore(s.queue_size)
        self._emit_lock = threading.Lock()
        self._idle = threading.Condition()
        self._outstanding = 0
        self._closed = self._closing = self._cancelling = self._abandon = False
        self._audit_problem: tuple[str, float] | None = None
        self._journal_problem: tuple[str, float] | None = None
        self._trimmed = 0
        self._seq = 0  # events matched in this session
        self.lost_events = 0
        self._book = RuleBook(self.directories, on_diagnostics)
        self._timer = Timer(self.clock, self._emit_time_event)
        self._apply(self._book.load(initial=True)[0])
        self._lanes = Lanes(self._execute, overall=s.max_runs, per_runtime=s.per_runtime,
                            default_per_runtime=s.max_runs)
        found = recover(self.audit, self.journal)
        #: Firings an earlier, dead host left unfinished (re-run or marked `lost`), read from
        #: the trail when looked at; the matcher thread settles them before any event.
        self.recovered: Sequence[FiringRecord] = found.orphans
        # Events accepted but never matched go next; `emit` waits until they are queued.
        self._replayed = threading.Event()
        self._hold(2)  # until the orphans are settled and the replay queued (`wait_idle`)
        threading.Thread(target=self._replay, args=(found.events,), name="qbcallbacks-replay",
                         daemon=True).start()
        self._matcher_thread = threading.Thread(target=self._match_loop, args=(found.orphans,),
                                                name="qbcallbacks-matcher", daemon=True)
        self._matcher_thread.start()
        if s.time_events == "scheduled":  # a replay's stream carries its own time events
            self._timer.start()
        self._watcher = Watcher(self.directories, self.reload).start() if watch else None

    @classmethod
    def from_qbconf(cls, qbconf: str | Path, supervisor: Supervisor,
                    **kwargs: Any) -> Dispatcher:
        """A dispatcher on the `supervisor_universal_callback_path` of a qb.conf."""
        conf = read_qbconf(qbconf)
        if conf.allow_job_code:
            given = kwargs.pop("settings", None) or kwargs.pop("config", None)
            kwargs["settings"] = (given or DispatcherSettings()).model_copy(
                update={"allow_job_code": True})
        return cls(conf.callback_path(kwargs.get("env")), supervisor, **kwargs)

    # -- the public surface ----------------------------------------------------------------

    @property
    def config(self) -> DispatcherSettings:
        """The settings (the name they had first)."""
        return self.settings

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules in force, numbered in firing order over the whole path."""
        return self._book.numbered

    @property
    def diagnostics(self) -> dict[str, tuple[Diagnostic, ...]]:
        """The latest findings per directory."""
        return self._book.diagnostics

    @property
    def health(self) -> Health:
        """Whether events are being taken; when not, the cause (cleared when it clears)."""
        for problem in (self._audit_problem, self._journal_problem):
            if problem is not None:
                return Health(ok=False, problem=problem[0], since=problem[1])
        return Health()

    @property
    def queue_depth(self) -> int:  # events accepted and not yet taken by the matcher thread
        return self._queue.qsize()

    @property
    def previous_run_died(self) -> bool:
        """True when the previous host on this audit trail never closed (it was killed)."""
        return self.audit.previous_session_died

    def emit(self, event: Event, job: Job | None = None, *, key: JournalKey = None) -> None:
        """Journal and queue an event (and what is known of its job). Returns at once unless
        the queue is full (then waits up to `emit_timeout` and raises `BackPressureError`) or
        the journal or trail cannot be written (`DispatcherUnavailable`, naming the cause).
        `key` (an idempotency key) is journalled with it: see `journal.last_key`."""
        if self._closed:
            raise DispatcherClosed("the dispatcher is closed; the event was not taken")
        problem = self._audit_problem
        if problem is not None:
            raise DispatcherUnavailable(f"event {event.format()} not accepted: {problem[0]}")
        if not self._replayed.wait(self.settings.emit_timeout):
            raise BackPressureError(f"event {event.format()} not accepted: events a previous "
                                    "host accepted are still being read back from the journal")
        if not self._room.acquire(timeout=self.settings.emit_timeout):
            raise BackPressureError(
                f"event {event.format()} not accepted: {self.settings.queue_size} events are "
                f"waiting and none was taken in {self.settings.emit_timeout:g} s; the "
                "supervisor must retry or slow down")
        try:
            self._accept(event, job, job.model_dump_json() if job is not None else None, key)
        except JournalError as exc:
            self._room.release()
            self._journal_problem = (str(exc), time.time())
            raise DispatcherUnavailable(f"event {event.format()} not accepted: {exc}") from exc
        self._journal_problem = None

    def _accept(self, event: Event, job: Job | None, job_json: str | None,
                key: JournalKey = None) -> None:
        self._hold(1)
        try:
            with self._emit_lock:  # journal order is queue order
                seq, end = (self.journal.append(event, job_json) if key is None
                            else self.journal.append(event, job_json, key))
                self._queue.put(Accepted(seq, event, job, job_json, end))
        except BaseException:
            self._done(1)
            raise

    def _replay(self, entries: Iterator[JournalEntry]) -> None:
        """Queue the journal's unmatched events, in order, within the queue's bound."""
        replay(entries, self._room, self._hold, self._queue.put)  # reports its own failure
        self._replayed.set()
        self._done(1)

    def _emit_time_event(self, event: Event) -> None:
        # Our own events: wait for room rather than fail, so a due instant is never lost.
        self._room.acquire()
        try:
            self._accept(event, None, None)
        except JournalError as exc:
            self._room.release()
            log.error("time event %s not journalled: %s", event.format(), exc)

    def poll_time(self) -> None:
        """Emit the time events due now; called by the timer thread and by manual clocks."""
        if not self._closing and self.settings.time_events == "scheduled":
            self._timer.poll()

    def reload(self, directories: Sequence[str] | None = None,
               timeout: float | None = None) -> list[Diagnostic]:
        """Reload callback directories (all by default) and return their findings.

        Loading happens off the matcher thread within `reload_budget` seconds per directory;
        a directory with errors, or whose load is too slow, keeps its last good rules."""
        rules, found = self._book.load(initial=False, only=directories,
                                       budget=self.settings.reload_budget)
        swap = Swap(rules, Future())
        self._hold(1)
        self._queue.put(swap)
        swap.done.result(timeout)
        return found

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted so far is matched and every run finished (and the
        outcomes are committed); False if that did not happen within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._outstanding:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 0.5)
        while not self._flush():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self, *, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop taking events, then run what is queued (`drain`) or cancel it.

        Cancelled firings are recorded as `cancelled`, never dropped. Runs already started
        finish (each within its timeout). Returns False if draining timed out (what was left
        was then cancelled; events never matched stay in the journal for the next start)."""
        if self._closing:
            return True
        # Events the callbacks cause while draining are still taken; the caller stopped.
        self._closing = True
        if self._watcher is not None:
            self._watcher.stop()
        self._timer.stop()
        drained = self.wait_idle(timeout) if drain else False
        self._closed = True
        if not drained:
            self._cancelling = True
            for firing in self._lanes.cancel_waiting():
                self._finish(firing, "cancelled", error="dispatcher closed before the run started")
            if not self.wait_idle(timeout if timeout is not None else 30.0):
                self._abandon = True  # the trail stays unwritable: leave the rest to a restart
        self._queue.put(None)
        self._matcher_thread.join()
        self._lanes.close()
        if self._own_runtimes:
            self._runner.close()
        self.journal.close()
        try:
            self.audit.end_session()
            if self._own_audit:
                self.audit.release_writer()  # the trail stays readable (`audit.query`)
        except AuditError as exc:
            log.error("the session could not be closed in the audit trail: %s", exc)
        return drained

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bookkeeping -----------------------------------------------------------------------

    def _hold(self, n: int) -> None:
        with self._idle:
            self._outstanding += n

    def _done(self, n: int) -> None:
        if not n:
            return
        with self._idle:
            self._outstanding -= n
            if self._outstanding <= 0:
                self._idle.notify_all()

    def _retry(self, what: Callable[[], Any]) -> Any:
        """Run an audit write until it succeeds (backing off, reporting the fault meanwhile),
        or until `close` gives up; then raise the last error."""
        delay = 0.01
        while True:
            try:
                out = what()
            except AuditError as exc:
                if self._audit_problem is None:
                    log.error("audit trail unwritable, retrying: %s", exc)
                    self._audit_problem = (f"the audit trail cannot be written: {exc}",
                                           time.time())
                if self._abandon:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max)
                continue
            if self._audit_problem is not None:
                log.warning("audit trail writable again")
                self._audit_problem = None
            return out

    def _flush(self) -> bool:
        try:
            self.audit.flush()
        except AuditError as exc:
            if self._audit_problem is None:
                self._audit_problem = (f"the audit trail cannot be written: {exc}", time.time())
            return False
        self._audit_problem = None
        return True

    def _count_attempt(self, firing_id: int, started: float) -> None:
        self._retry(lambda: self.audit.start(firing_id, started))

    # -- the matcher thread ----------------------------------------------------------------

    def _match_loop(self, orphans: Orphans) -> None:
        try:  # before any event, so a job's re-runs keep their place ahead of its new firings
            settle(orphans, self.rules, self.settings, self._wait_room, self._submit, self._retry)
        finally:
            self._done(1)
        while True:
            try:
                if self._match_once():
                    return
            except Exception:  # reported; the loop goes on with the next items
                log.exception("matcher thread: a batch failed; going on")

    def _wait_room(self) -> None:  # a backlog waits in the journal and the trail, not here
        self._lanes.wait_below(self.settings.max_backlog,
                               lambda: self._cancelling or self._abandon)

    def _submit(self, firing: PendingFiring) -> None:
        """Hand a recorded firing to its lane (or cancel it when closing without a drain)."""
        self._hold(1)
        if self._cancelling:
            self._finish(firing, "cancelled", error="dispatcher closed before the run started")
        else:
            self._lanes.submit(firing)

    def _match_once(self) -> bool:
        self._wait_room()
        try:
            item = self._queue.get(timeout=0.05)
        except queue.Empty:
            self._flush()
            return False
        batch = [item]
        while len(batch) < self.settings.batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return self._process(batch)

    def _process(self, batch: list[Item]) -> bool:
        accepted: list[Accepted] = []
        stop = False
        for item in batch:
            if item is None:
                stop = True
            elif isinstance(item, Swap):
                self._record(accepted)
                accepted = []
                try:
                    self._apply(item.rules)
                    item.done.set_result(None)
                except Exception as exc:  # a bad swap must not kill the matcher thread
                    item.done.set_exception(exc)
                self._done(1)
            else:
                accepted.append(item)
                self._room.release()
        self._record(accepted)
        if stop:
            self._flush()
        return stop

    def _apply(self, rules: tuple[Rule, ...]) -> None:
        self._matcher.set_rules(rules)
        self._timer.set_triggers(r.trigger for r in rules)

    def _record(self, accepted: list[Accepted]) -> None:
        """Match a run of events, commit them with their firings, hand the firings on."""
        if not accepted:
            return
        events: list[tuple[int, Event, str | None]] = []
        pending: list[PendingFiring] = []
        for a in accepted:
            seq = self._seq
            self._seq += 1
            self._timer.track(a.event, a.job)
            try:
                found = self._matcher.observe(a.event, a.job)
            except Exception:  # a matcher bug must not stop the stream; record it loudly
                self.lost_events += 1
                log.exception("matcher failed on %s", a.event.format())
                found = ()
            events.append((seq, a.event, a.job_json))
            pending.extend(pending_firing(seq, i, f) for i, f in enumerate(found))
        end, jseq = accepted[-1].end, accepted[-1].jseq
        try:
            ids = self._retry(lambda: self.audit.record_batch(events, pending, end, jseq))
        except Exception as exc:  # an AuditError: closing gave up, the journal keeps them
            if not isinstance(exc, AuditError):  # a fault of ours: lost, and said so
                self.lost_events += len(accepted)
                log.exception("recording %d events failed; they are lost", len(accepted))
            self._done(len(accepted))  # never left counted: a drain would wait for ever
            return
        if end.segment > self._trimmed:
            self.journal.trim(end)
            self._trimmed = end.segment
        for fid, p in zip(ids, pending, strict=True):
            self._submit(p.model_copy(update={"id": fid}))
        self._done(len(accepted))

    # -- runs ------------------------------------------------------------------------------

    def _execute(self, firing: PendingFiring) -> None:
        try:
            if self._cancelling:
                self._finish(firing, "cancelled", error="dispatcher closed before the run started")
                return
            refusal = job_code_refusal(firing.language, job_specific=firing.path is None,
                                       allowed=self.settings.allow_job_code)
            if refusal is not None:
                self._finish(firing, "refused", error=refusal, started_at=time.time())
                return
            result, started = self._runner.run(firing)
            self._finish(firing, result.status, exit_code=result.exit_code,
                         output=result.output, error=result.error, started_at=started,
                         duration=result.duration)
        except AuditError:  # closing gave up on the trail: the firing stays pending
            self._done(1)
        except Exception:  # never lose the count: the run is over, whatever happened
            log.exception("run of %s failed in the dispatcher", firing.callback)
            self._finish(firing, "crashed", error="the dispatcher failed around this run")

    def _finish(self, firing: PendingFiring, status: str, *, exit_code: int | None = None,
                output: str = "", error: str | None = None, started_at: float | None = None,
                duration: float | None = None) -> None:
        self.audit.complete(firing.id, status, exit_code=exit_code, output=output,
                            error=error, started_at=started_at, finished_at=time.time(),
                            duration=duration)
        self._done(1)
