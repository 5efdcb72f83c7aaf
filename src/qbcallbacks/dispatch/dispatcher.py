"""The dispatcher a supervisor embeds: `emit(event)` returns at once, callbacks run behind it.

Pipeline: `emit` puts the event on a bounded queue (waiting up to `emit_timeout` when it is
full, then raising `BackPressureError`: an event is never dropped silently). One matcher
thread takes events in emit order, asks the matcher which callbacks fire, commits the batch's
events and pending firings to the audit trail, then hands the runs to per-job lanes that feed
per-runtime pools under an overall limit (see `runs`). Completions are committed in batches.

Reloads and time events go through the same queue, so they are ordered with the events around
them and the matcher is only ever touched by its own thread.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field

from ..audit.store import AuditStore, FiringRecord, PendingFiring
from ..config.load import expand_callback_path, load_directory
from ..config.qbconf import read_qbconf
from ..config.watch import Watcher
from ..errors import Diagnostic, QbCallbacksError
from ..matching.clock import Clock, SystemClock
from ..matching.matcher import AttachPolicy, Firing, Matcher
from ..matching.schedule import Scheduler, job_time_specs, time_specs
from ..model._base import Frozen, trusted
from ..model.events import Event, Job
from ..model.languages import runtime_extension
from ..model.rules import Rule
from ..model.supervisor import Supervisor
from ..runtimes.api import (
    Invocation,
    PythonMode,
    RunResult,
    Runtime,
    RuntimeSettings,
    inline_code,
    runtime_classes,
)
from ..runtimes.policy import job_code_refusal
from .lanes import Lanes, Match, Run


class BackPressureError(QbCallbacksError):
    """`emit` waited `emit_timeout` seconds for room in a full queue; the event was not taken."""


class DispatcherClosed(QbCallbacksError):
    """`emit` after `close()`."""


class DispatcherConfig(Frozen):
    """Limits and policies; defaults suit a supervisor with a few thousand jobs."""

    #: Events waiting to be matched before `emit` starts to wait.
    queue_size: int = Field(default=10_000, ge=1)
    #: Seconds `emit` waits for room in a full queue before raising `BackPressureError`.
    emit_timeout: float = Field(default=1.0, ge=0)
    #: Runs in progress at once, over all runtimes.
    max_runs: int = Field(default=8, ge=1)
    #: Runs in progress at once per runtime extension (`py`, `pl`, `qcb`, ...).
    per_runtime: dict[str, int] = Field(default_factory=lambda: {"py": 4, "pl": 2, "qcb": 8})
    #: Default seconds a run may take.
    timeout: float = Field(default=30.0, gt=0)
    #: Per-rule timeouts by callback file name (or `job:<id>#<i>`).
    rule_timeouts: dict[str, float] = Field(default_factory=dict)
    #: Events matched per audit transaction at most.
    batch: int = Field(default=512, ge=1)
    #: What to do with firings a crashed host left pending: run them again or mark them `lost`.
    recovery: Literal["rerun", "report"] = "rerun"
    #: Where `<jobid>.cb` callback logs go; None keeps output in the audit trail only.
    log_dir: str | None = None
    #: Run job-specific Python and Perl callbacks (see `runtimes.policy`); off by default.
    allow_job_code: bool = False
    #: `scheduled`: raise time events when the clock reaches them; `stream`: raise none, the
    #: events given to `emit` carry them (a replay: it runs its stream's events only).
    time_events: Literal["scheduled", "stream"] = "scheduled"
    #: After a reload, a live job keeps the rules it was attached under (`submission`, the
    #: original's) or takes the new set (`live`); see `spec/semantics.md`.
    attach: AttachPolicy = "submission"


class MatchSource(Protocol):
    """What the dispatcher needs from the matcher; only ever called from the matcher thread."""

    def observe(self, event: Event, job: Job | None) -> Sequence[Match]:
        """The firings of one event, in firing order; `job` updates what is known of it."""
        ...

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace the universal rules; the state of rules kept unchanged survives."""
        ...


class MatcherSource:
    """The compiled `Matcher` seen as a `MatchSource`: its firings become `Match`es."""

    def __init__(self, matcher: Matcher | None = None) -> None:
        self.matcher = matcher if matcher is not None else Matcher()

    def observe(self, event: Event, job: Job | None) -> Sequence[Match]:
        return [_match(f) for f in self.matcher.observe(event, job)]

    def set_rules(self, rules: Sequence[Rule]) -> None:
        self.matcher.replace_rules(rules)


def _match(firing: Firing) -> Match:
    rule = firing.rule
    if rule is not None:
        return Match(job=firing.job, callback=rule.file, directory=rule.directory,
                     trigger=firing.trigger, language=rule.language, path=rule.path)
    cb = firing.job_callback
    assert cb is not None  # a firing is of a rule or of a job callback
    return Match(job=firing.job, callback=firing.callback, directory="",
                 trigger=firing.trigger, language=cb.language,
                 code=inline_code(cb.language, cb.code))


def build_runtimes(supervisor: Supervisor, *, mode: PythonMode = "isolated",
                   pool_sizes: Mapping[str, int] | None = None,
                   settings: RuntimeSettings | None = None) -> dict[str, Runtime]:
    """One runtime per registered extension, bound to `supervisor`, pools sized to the
    dispatcher's per-runtime limits (a bigger pool than the limit would only idle)."""
    sizes = dict(pool_sizes or {})
    out: dict[str, Runtime] = {}
    for ext, cls in runtime_classes().items():
        overrides: dict[str, object] = {"mode": mode}
        if ext in sizes:
            overrides["pool_size"] = max(1, min(64, sizes[ext]))
        out[ext] = cls(supervisor, settings, **overrides)
    return out


DiagnosticsHandler = Callable[[str, Sequence[Diagnostic]], None]


class _Reload:
    """A reload request travelling through the event queue."""

    def __init__(self, directories: Sequence[str] | None) -> None:
        self.directories = directories
        self.done: Future[list[Diagnostic]] = Future()


_Item = tuple[Event, Job | None] | _Reload | None  # None stops the matcher thread


class Dispatcher:
    """Matches events to callbacks and runs them without blocking the caller.

    Build it with the callback path and a `Supervisor`; `emit` events; `close()` at the end
    (or use it as a context manager). `wait_idle()` waits until everything emitted so far,
    and everything the callbacks caused, has run.
    """

    def __init__(self, callback_path: Iterable[str] | None, supervisor: Supervisor, *,
                 matcher: MatchSource | None = None,
                 runtimes: Mapping[str, Runtime] | None = None,
                 mode: PythonMode = "isolated", config: DispatcherConfig | None = None,
                 audit: AuditStore | str | Path | None = None, clock: Clock | None = None,
                 env: Mapping[str, str] | None = None, watch: bool = False,
                 on_diagnostics: DiagnosticsHandler | None = None) -> None:
        self.config = config or DispatcherConfig()
        self.supervisor = supervisor
        self.directories = expand_callback_path(callback_path, env)
        self.clock: Clock = clock or SystemClock()
        self._matcher: MatchSource = (matcher if matcher is not None
                                      else MatcherSource(Matcher(attach=self.config.attach)))
        self._own_runtimes = runtimes is None
        self._runtimes = dict(runtimes) if runtimes is not None else build_runtimes(
            supervisor, mode=mode, pool_sizes=self.config.per_runtime)
        self._on_diagnostics = on_diagnostics
        if audit is None:
            audit = Path("qbcallbacks-run") / "audit.db"
        self.audit = audit if isinstance(audit, AuditStore) else AuditStore(audit)
        self.session = self.audit.begin_session(note=",".join(self.directories))
        self.log_dir = Path(self.config.log_dir) if self.config.log_dir else None

        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=self.config.queue_size)
        self._idle = threading.Condition()
        self._outstanding = 0
        self._closed = False
        self._closing = False
        self._cancelling = False
        self._wake = threading.Event()
        self._seq = 0
        self._live: set[int] = set()
        self._live_lock = threading.Lock()
        self._time_lock = threading.Lock()
        self._scheduler = Scheduler()
        #: The rules in force per directory (the last good load) and the latest findings.
        self._rules: dict[str, tuple[Rule, ...]] = {}
        self._numbered: tuple[Rule, ...] = ()
        self.diagnostics: dict[str, tuple[Diagnostic, ...]] = {}
        self.recovered: list[FiringRecord] = []
        self.lost_events = 0

        self._load_all(initial=True)
        self._lanes = Lanes(self._execute, overall=self.config.max_runs,
                            per_runtime=self.config.per_runtime,
                            default_per_runtime=self.config.max_runs)
        self._recover()
        self._matcher_thread = threading.Thread(target=self._match_loop,
                                                name="qbcallbacks-matcher", daemon=True)
        self._matcher_thread.start()
        self._unsubscribe = self.clock.subscribe(self.poll_time)
        self._timer_thread = threading.Thread(target=self._time_loop, name="qbcallbacks-time",
                                              daemon=True)
        self._timer_thread.start()
        self._watcher = Watcher(self.directories, self.reload).start() if watch else None

    @classmethod
    def from_qbconf(cls, qbconf: str | Path, supervisor: Supervisor,
                    **kwargs: Any) -> Dispatcher:
        """A dispatcher on the `supervisor_universal_callback_path` of a qb.conf."""
        conf = read_qbconf(qbconf)
        if conf.allow_job_code:
            config = kwargs.get("config") or DispatcherConfig()
            kwargs["config"] = config.model_copy(update={"allow_job_code": True})
        env = kwargs.get("env")
        return cls(conf.callback_path(env), supervisor, **kwargs)

    # -- the public surface ----------------------------------------------------------------

    def emit(self, event: Event, job: Job | None = None) -> None:
        """Queue an event (and what is known of its job); returns at once unless the queue is
        full, then waits up to `emit_timeout` and raises `BackPressureError`."""
        if self._closed:
            raise DispatcherClosed("the dispatcher is closed; the event was not taken")
        try:
            self._put((event, job), self.config.emit_timeout)
        except queue.Full:
            raise BackPressureError(
                f"event {event.format()} not accepted: {self.config.queue_size} events are "
                f"waiting and none was taken in {self.config.emit_timeout:g} s; the supervisor "
                "must retry or slow down") from None

    def reload(self, directories: Sequence[str] | None = None,
               timeout: float | None = None) -> list[Diagnostic]:
        """Reload callback directories (all by default) and return their findings.

        A directory whose new configuration has errors keeps its last good rules."""
        request = _Reload(directories)
        self._put(request, None)
        return request.done.result(timeout)

    def _put(self, item: _Item, timeout: float | None) -> None:
        with self._idle:
            self._outstanding += 1
        try:
            self._queue.put(item, timeout=timeout)
        except BaseException:
            self._done(1)
            raise

    def poll_time(self) -> None:
        """Emit the time events due now; called by the timer thread and by manual clocks."""
        if self._closing or self.config.time_events == "stream":
            return
        with self._time_lock:
            with self._live_lock:
                live = list(self._live)
            due = self._scheduler.due(self.clock.now(), live)
            # Our own events: wait for room rather than fail, so a due instant is never lost.
            for event in due:
                self._put((event, None), None)
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted so far is matched and every run finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._outstanding:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 0.5)
            self.audit.flush()
        return True

    def close(self, *, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop taking events, then run what is queued (`drain`) or cancel it.

        Cancelled firings are recorded as `cancelled`, never dropped. Runs already started
        finish (each within its timeout). Returns False if draining timed out (what was left
        was then cancelled)."""
        if self._closing:
            return True
        # Events the callbacks cause while draining are still taken; the caller stopped.
        self._closing = True
        if self._watcher is not None:
            self._watcher.stop()
        self._unsubscribe()
        self._wake.set()
        drained = self.wait_idle(timeout) if drain else False
        self._closed = True
        if not drained:
            self._cancelling = True
            for run in self._lanes.cancel_waiting():
                self._finish(run, "cancelled", error="dispatcher closed before the run started")
            self.wait_idle()
        self._queue.put(None)
        self._matcher_thread.join()
        self._timer_thread.join()
        self._lanes.close()
        if self._own_runtimes:
            for runtime in self._runtimes.values():
                runtime.close()
        self.audit.end_session()
        return drained

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules in force, numbered in firing order over the whole path."""
        return self._numbered

    # -- loading ---------------------------------------------------------------------------

    def _load_all(self, *, initial: bool, only: Sequence[str] | None = None) -> list[Diagnostic]:
        found: list[Diagnostic] = []
        for directory in self.directories:
            if only is not None and directory not in only:
                continue
            load = load_directory(directory)
            self.diagnostics[directory] = load.diagnostics
            found.extend(load.diagnostics)
            errors = [d for d in load.diagnostics if d.severity == "error"]
            # A directory with errors keeps its last good rules (the findings say why nothing
            # changed); at the first load there are none, so what loaded is used.
            if not (errors and not initial and directory in self._rules):
                self._rules[directory] = load.rules
            if load.diagnostics and self._on_diagnostics is not None:
                self._on_diagnostics(directory, load.diagnostics)
        rules = self._numbered = self._renumbered()
        self._matcher.set_rules(rules)
        with self._time_lock:
            self._scheduler.set_specs(time_specs(r.trigger for r in rules), self.clock.now())
        self._wake.set()
        return found

    def _renumbered(self) -> tuple[Rule, ...]:
        out: list[Rule] = []
        for rule in (r for d in self.directories for r in self._rules.get(d, ())):
            out.append(rule if rule.position == len(out)
                       else rule.model_copy(update={"position": len(out)}))
        return tuple(out)

    # -- crash recovery --------------------------------------------------------------------

    def _recover(self) -> None:
        orphans = self.audit.claim_orphans()
        self.recovered = orphans
        by_key = {(r.directory, r.file): r for r in self.rules}
        for rec in orphans:
            if self.config.recovery == "report":
                self.audit.complete(rec.id, "lost", error="the host stopped before this run "
                                    "finished; not run again (recovery = report)")
                continue
            if rec.code is None:
                rule = by_key.get((rec.directory, rec.callback))
                if rule is None:
                    self.audit.complete(rec.id, "lost", error="the host stopped before this "
                                        "run finished and the callback is no longer configured")
                    continue
                match = Match(job=rec.job, callback=rec.callback, directory=rec.directory,
                              trigger=rec.trigger, language=rule.language, path=rule.path)
            else:
                match = Match(job=rec.job, callback=rec.callback, directory=rec.directory,
                              trigger=rec.trigger, language=rec.language, code=rec.code)
            with self._idle:
                self._outstanding += 1
            self._lanes.submit(Run(rec.id, match, rec.event))
        self.audit.flush()

    # -- the matcher thread ----------------------------------------------------------------

    def _match_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                self.audit.flush()
                continue
            batch = [item]
            while len(batch) < self.config.batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = self._process(batch)
            if stop:
                self.audit.flush()
                return

    def _process(self, batch: list[_Item]) -> bool:
        events: list[tuple[int, Event, dict[str, object] | None]] = []
        pending: list[PendingFiring] = []
        matches: list[Match] = []
        taken = 0
        stop = False
        for item in batch:
            if item is None:
                stop = True
                continue
            if isinstance(item, _Reload):
                self._flush_batch(events, pending, matches, taken)
                events, pending, matches, taken = [], [], [], 0
                try:
                    item.done.set_result(self._load_all(initial=False, only=item.directories))
                except Exception as exc:  # a reload must not kill the matcher thread
                    item.done.set_exception(exc)
                self._done(1)
                continue
            event, job = item
            taken += 1
            seq = self._seq
            self._seq += 1
            self._track(event, job)
            try:
                found = self._matcher.observe(event, job)
            except Exception:  # a matcher bug must not stop the stream; record it loudly
                self.lost_events += 1
                traceback.print_exc()
                found = ()
            events.append((seq, event, None if job is None else job.model_dump(mode="json")))
            for ordinal, m in enumerate(found):
                # Built from the matcher's already valid data: no validation on this path.
                pending.append(trusted(
                    PendingFiring, event_seq=seq, ordinal=ordinal, event=event, job=m.job,
                    callback=m.callback, directory=m.directory, trigger=m.trigger,
                    language=m.language, code=m.code))
                matches.append(m)
        self._flush_batch(events, pending, matches, taken)
        return stop

    def _flush_batch(self, events: list[tuple[int, Event, dict[str, object] | None]],
                     pending: list[PendingFiring], matches: list[Match], taken: int) -> None:
        if not events and not pending:
            return
        ids = self.audit.record_batch(events, pending)
        with self._idle:
            self._outstanding += len(ids)
        for fid, p, m in zip(ids, pending, matches, strict=True):
            run = Run(fid, m, p.event)
            if self._cancelling:
                self._finish(run, "cancelled", error="dispatcher closed before the run started")
            else:
                self._lanes.submit(run)
        self._done(taken)

    def _track(self, event: Event, job: Job | None) -> None:
        removed = event.type == "job" and event.name == "removed"
        if removed or (job is not None and job.id):
            with self._time_lock:  # a job's own time triggers are scheduled while it is live
                specs = job_time_specs(job) if job is not None and not removed else ()
                self._scheduler.set_job_specs(event.job if removed or job is None else job.id,
                                              specs)
            self._wake.set()
        if event.type.startswith("global") or not event.job:
            return
        with self._live_lock:
            if removed:
                self._live.discard(event.job)
            else:
                self._live.add(event.job)

    # -- runs ------------------------------------------------------------------------------

    def _execute(self, run: Run) -> None:
        if self._cancelling:
            self._finish(run, "cancelled", error="dispatcher closed before the run started")
            return
        m = run.match
        ext = runtime_extension(m.language)
        runtime = self._runtimes.get(ext)
        started = time.time()
        if runtime is None:
            self._finish(run, "error", error=f"no runtime for {m.language!r} callbacks",
                         started_at=started)
            return
        refusal = job_code_refusal(m.language, job_specific=m.path is None,
                                   allowed=self.config.allow_job_code)
        if refusal is not None:
            self._finish(run, "refused", error=refusal, started_at=started)
            return
        timeout = self.config.rule_timeouts.get(m.callback, self.config.timeout)
        invocation = Invocation(
            callback=m.callback, path=m.path, code=m.code if m.path is None else None,
            job_id=m.job, event=run.event, timeout=timeout,
            log_path=None if self.log_dir is None else self.log_dir / f"{m.job}.cb")
        try:
            result = runtime.run(invocation)
        except Exception as exc:  # a runtime bug is this run's failure, not the host's
            result = RunResult(status="crashed", error=f"runtime failed: {exc!r}",
                               duration=time.time() - started)
        self._finish(run, result.status, exit_code=result.exit_code, output=result.output,
                     error=result.error, started_at=started, duration=result.duration)

    def _finish(self, run: Run, status: str, *, exit_code: int | None = None, output: str = "",
                error: str | None = None, started_at: float | None = None,
                duration: float | None = None) -> None:
        self.audit.complete(run.firing_id, status, exit_code=exit_code, output=output,
                            error=error, started_at=started_at, finished_at=time.time(),
                            duration=duration)
        self._done(1)

    def _done(self, n: int) -> None:
        if not n:
            return
        with self._idle:
            self._outstanding -= n
            if self._outstanding <= 0:
                self._idle.notify_all()

    # -- time ------------------------------------------------------------------------------

    def _time_loop(self) -> None:
        while True:
            # Clear first: a wake-up after this line is seen by the wait below.
            self._wake.clear()
            if self._closing:
                return
            with self._time_lock:
                nxt = self._scheduler.next_due()
            delay = 1.0 if nxt is None else nxt - self.clock.now()
            if delay > 0:
                # At most a second: the real clock may be set forward under us.
                self.clock.wait(self._wake, min(delay, 1.0))
                continue
            self.poll_time()
