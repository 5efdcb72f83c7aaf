"""The dispatcher a supervisor embeds: `emit(event)` returns at once, callbacks run behind it.

It only wires parts with one job each; a firing goes one way through them:

- the intake (`intake`) journals each event and queues it, within a bound (back pressure);
- the matcher thread (`matchloop`) matches events in order and hands the firings on;
- the recorder (`recorder`) commits events with their firings, each run's attempt and each
  firing's outcome to the audit trail, and finishes what a dead host left (`recovery`);
- the executor (`executor`) runs firings, per job in order, and reports each outcome to the
  recorder; `LocalExecutor` (lanes and pools in this host) is the one given by default,
  `CeleryExecutor` (`remote`) sends the runs to Celery workers (`settings.executor`).

Reloads are loaded off the matcher thread (`reload`) and swapped in through the intake, like
time events (`timer`), so they are ordered with the events around them. Where the dispatcher
is in its life is one `Stage`; the work in flight is counted by one `InFlight`.

Faults: a failing audit write is retried with backoff; meanwhile `emit` raises
`DispatcherUnavailable` naming the cause and `health` says so; work resumes by itself. No
thread dies of an exception: each loop logs it (logger `qbcallbacks.dispatch`) and goes on.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..audit.backends import open_audit, open_journal
from ..audit.journal import JournalKey
from ..audit.records import FiringRecord
from ..audit.store import AuditStore
from ..config.load import expand_callback_path
from ..config.qbconf import read_qbconf
from ..config.watch import Watcher
from ..errors import Diagnostic
from ..matching.clock import Clock, SystemClock
from ..matching.matcher import Matcher
from ..model.events import Event, Job
from ..model.globals import GlobalCallback
from ..model.rules import Rule
from ..model.supervisor import Supervisor
from ..runtimes.api import PythonMode, Runtime
from .executor import Executor, LocalExecutor
from .globals import GlobalBook, WithGlobals
from .intake import Intake
from .matchloop import MatcherSource, MatchLoop, MatchSource
from .recorder import Recorder
from .reload import DiagnosticsHandler, RuleBook
from .runner import build_runtimes
from .settings import (
    BackPressureError,
    DispatcherClosed,
    DispatcherSettings,
    DispatcherUnavailable,
    Health,
)
from .state import InFlight, LifeCycle, Stage
from .timer import Timer

__all__ = ["BackPressureError", "Dispatcher", "DispatcherClosed", "DispatcherSettings",
           "DispatcherUnavailable", "Executor", "Health", "LocalExecutor", "MatchSource",
           "MatcherSource", "build_runtimes"]


class Dispatcher:
    """Matches events to callbacks and runs them without blocking the caller.

    Build it with the callback path and a `Supervisor`; `emit` events; `close()` at the end
    (or use it as a context manager). `wait_idle()` waits until everything emitted so far,
    and everything the callbacks caused, has run.

    `audit` is the trail (a path or an open `AuditStore`; its journal lives next to it in
    `<db>.events/`); with none, the trail and journal go to a temporary directory removed when
    the dispatcher is garbage-collected: nothing is ever written to the current directory.
    `settings` holds every limit and policy; the collaborators are optional replacements
    (`executor` runs the firings elsewhere; `runtimes` and `mode` are then unused here).

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
                 executor: Executor | None = None) -> None:
        self.settings = s = settings or DispatcherSettings()
        self.supervisor = supervisor
        self.directories = expand_callback_path(callback_path, env)
        self.clock: Clock = clock or SystemClock()
        self._own_audit = not isinstance(audit, AuditStore)
        self.audit, self._tmp = _open_trail(audit, s)
        self.session = self.audit.begin_session(note=",".join(self.directories))
        self.journal = open_journal(self.audit, fsync=s.synchronous == "full")
        if self.audit.first_session:
            self.journal.discard()  # left over from a trail that was deleted
        self._life, self._work = LifeCycle(), InFlight()
        self._recorder = Recorder(self.audit, self.journal, s, self._life, self._work)
        self._intake = Intake(self.journal, s, self._life, self._work, self._recorder)
        self.emit_many = self._intake.emit_many  # `emit` of many, in order, checks paid once
        inner = matcher if matcher is not None else MatcherSource(Matcher(attach=s.attach))
        self._timer = Timer(self.clock, self._intake, inner)
        self._globals = GlobalBook(self.audit.global_callbacks(), s, self._timer)
        source = WithGlobals(inner, self._globals.matcher, self.clock)
        self._executor = executor if executor is not None else _executor_for(s, runtimes, mode)
        self._executor.start(self._recorder, s, supervisor)
        self._loop = MatchLoop(self._intake, source, self._recorder, self._executor,
                               self._timer, self._work, self._life, s, rebuilt=inner,
                               committed=self._globals.committed)
        self._book = RuleBook(self.directories, on_diagnostics)
        self._loop.apply(self._book.load_initial())
        self._globals.start()
        found = self._recorder.recover()
        #: Firings an earlier, dead host left unfinished (re-run or marked `lost`), read from
        #: the trail when looked at; the matcher thread settles them before any event.
        self.recovered: Sequence[FiringRecord] = found.orphans
        self._intake.replay(found.events)  # `emit` waits until they are queued
        self._loop.start(found, self.rules)
        if s.time_events == "scheduled":  # a replay's stream carries its own time events
            self._timer.start(after=self._intake.replayed)
        self._watcher = Watcher(self.directories, self.reload).start() if watch else None

    @classmethod
    def from_qbconf(cls, qbconf: str | Path, supervisor: Supervisor,
                    **kwargs: Any) -> Dispatcher:
        """A dispatcher on the `supervisor_universal_callback_path` of a qb.conf, running
        callbacks where its `supervisor_callback_executor` (and `_broker`) say."""
        conf = read_qbconf(qbconf)
        update: dict[str, object] = {key: True for key, on in (
            ("allow_job_code", conf.allow_job_code),
            ("allow_global_callbacks", conf.allow_global_callbacks)) if on}
        if conf.callback_executor is not None:
            update.update(executor=conf.callback_executor, broker=conf.callback_broker)
        if update:
            base = kwargs.get("settings") or DispatcherSettings()
            kwargs["settings"] = DispatcherSettings.model_validate(
                {**base.model_dump(), **update})
        return cls(conf.callback_path(kwargs.get("env")), supervisor, **kwargs)

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
        for problem in (self._recorder.problem, self._intake.problem):
            if problem is not None:
                return Health(ok=False, problem=problem[0], since=problem[1])
        return self._executor.health()

    @property
    def queue_depth(self) -> int:
        """Events accepted and not yet taken by the matcher thread."""
        return self._intake.depth

    @property
    def backlog(self) -> int:
        """Firings handed to the executor whose outcome is not recorded yet."""
        return self._work.firings

    @property
    def lost_events(self) -> int:
        """Events the matcher or the recorder failed on (each logged)."""
        return self._loop.lost_events

    @property
    def previous_run_died(self) -> bool:
        """True when the previous host on this audit trail never closed (it was killed)."""
        return self.audit.previous_session_died

    def emit(self, event: Event, job: Job | None = None, *, key: JournalKey = None) -> None:
        """Journal and queue an event (and what is known of its job). Returns at once unless
        the queue is full (then waits up to `emit_timeout` and raises `BackPressureError`) or
        the journal or trail cannot be written (`DispatcherUnavailable`, naming the cause).
        `key` (an idempotency key, never `qbcallbacks:time`'s) is journalled: see `last_key`."""
        self._intake.emit(event, job, key)

    def poll_time(self) -> None:
        """Emit the time events due now; called by the timer thread and by manual clocks."""
        if not self._life.reached(Stage.DRAINING) and self.settings.time_events == "scheduled":
            self._timer.poll()

    def submit_global(self, trigger: str, *, language: str, code: str) -> int:
        """Submit a global callback (no job; fires once per matching event, even when no job
        is live; kept in the trail across restarts) and return its id. Raises
        `GlobalCallbackError` with the reason, recorded in the trail, when the site does not
        allow global callbacks (`allow_global_callbacks`) or the callback is not valid."""
        return self._globals.submit(trigger, language=language, code=code)

    def remove_global(self, callback_id: int) -> None:
        """Take a global callback out of force (`GlobalCallbackError` if none has that id)."""
        self._globals.remove(callback_id)

    def globals(self) -> tuple[GlobalCallback, ...]:
        """The global callbacks in force, by id."""
        return self._globals.listing()

    def reload(self, directories: Sequence[str] | None = None,
               timeout: float | None = None) -> list[Diagnostic]:
        """Reload callback directories (all by default) and return their findings.

        All of it (reading, numbering, building) happens off the matcher thread within
        `reload_budget` seconds, then the set is swapped in between two events. A directory
        with errors keeps its last good rules; one over budget changes nothing (QCB150)."""
        rebuilt = self._loop.rebuilt
        build = rebuilt.prepare if rebuilt is not None else None
        return self._book.reload(directories, self.settings.reload_budget, build,
                                 self._intake.swap, timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every event emitted so far and every time instant due by now is matched
        and every run finished (the outcomes committed); False if not within `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not (self._timer.settle(timeout) and self._work.wait_idle(deadline)):
            return False
        while not self._recorder.flush():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self, *, drain: bool = True, timeout: float | None = None) -> bool:
        """Stop taking events, then run what is queued (`drain`) or cancel it.

        Cancelled firings are recorded as `cancelled`, never dropped. Runs already started
        finish (each within its timeout). Returns False if draining timed out (what was left
        was then cancelled; events never matched stay in the journal for the next start)."""
        # Events the callbacks cause while draining are still taken; the caller stopped.
        if not self._life.advance(Stage.DRAINING):
            return True
        if self._watcher is not None:
            self._watcher.stop()
        self._timer.stop()
        drained = self.wait_idle(timeout) if drain else False
        self._life.advance(Stage.CLOSED)
        if not drained:
            self._life.advance(Stage.CANCELLING)
            self._executor.cancel()
            if not self.wait_idle(timeout if timeout is not None else 30.0):
                self._life.advance(Stage.ABANDONED)  # a restart finishes the rest
        self._intake.stop()
        self._loop.join()
        self._executor.close()
        self._recorder.close(release=self._own_audit)  # the trail stays readable (`audit`)
        return drained

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _executor_for(settings: DispatcherSettings, runtimes: Mapping[str, Runtime] | None,
                  mode: PythonMode) -> Executor:
    """The executor the settings name: this host's pools, or Celery workers."""
    if settings.executor == "celery" and settings.broker:
        from .remote.executor import CeleryExecutor

        return CeleryExecutor(settings.broker)
    return LocalExecutor(runtimes, mode=mode)


def _open_trail(audit: AuditStore | str | Path | None, settings: DispatcherSettings,
                ) -> tuple[AuditStore, tempfile.TemporaryDirectory[str] | None]:
    """The trail given, or opened at its path, or in a temporary directory (returned too, so
    it lives as long as the dispatcher)."""
    if isinstance(audit, AuditStore):
        return audit, None
    tmp = None
    if audit is None:
        tmp = tempfile.TemporaryDirectory(prefix="qbcallbacks-")
        audit = Path(tmp.name) / "audit.db"
    return open_audit(audit, busy_timeout=settings.busy_timeout,
                      synchronous=settings.synchronous), tmp
