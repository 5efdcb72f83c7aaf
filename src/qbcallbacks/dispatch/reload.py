"""The rules in force, per callback directory, and reloading them off the matcher thread.

A reload runs on a loader thread under one time budget that covers all of it: reading and
validating the directories, numbering the rules over the whole path, building the matcher's
indexes and the time schedules. Only the finished set goes through the intake to the matcher
thread, which swaps it in between two events; events keep being accepted meanwhile. A
directory whose new configuration has errors keeps its last good rules; a reload that
exceeds its budget is abandoned at the next check (every few thousand rules) and changes
nothing: the findings say why (QCB150), so a pathological file never stops event intake.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ..config.load import load_directory
from ..errors import Diagnostic, QbCallbacksError, make_diagnostic
from ..lang.source import collector_paused
from ..matching.rebuild import CHUNK, Check, Prepared
from ..matching.schedule import TimeSpec, time_specs
from ..model.rules import Rule, with_position

#: From this many rules on, a reload ends by freezing what the process holds (`gc.freeze`).
FREEZE_AT = 10_000
DiagnosticsHandler = Callable[[str, Sequence[Diagnostic]], None]
#: Builds a rule set off the matcher thread (None: the matcher builds it when swapped in).
Builder = Callable[[Sequence[Rule], Check], Prepared] | None
#: Queues a built set for the matcher thread; the future is done once it is in force.
Swapper = Callable[[tuple[Rule, ...], Prepared | None, set[TimeSpec] | None], Future[None]]


class OverBudget(QbCallbacksError):
    """A reload ran past its deadline; it is abandoned and the rules in force stay."""


@dataclass(slots=True)
class Plan:
    """A reload worked out and not yet in force."""

    rules: dict[str, tuple[Rule, ...]]
    numbered: tuple[Rule, ...]
    found: dict[str, tuple[Diagnostic, ...]]


class RuleBook:
    """The last good rules of each directory, numbered in firing order over the whole path."""

    def __init__(self, directories: Sequence[str],
                 on_diagnostics: DiagnosticsHandler | None = None) -> None:
        self.directories = list(directories)
        self._on_diagnostics = on_diagnostics
        self._rules: dict[str, tuple[Rule, ...]] = {}
        self._lock = threading.Lock()  # one reload at a time
        #: The last reload's loader thread: an abandoned one may still be reading a file.
        self._worker: threading.Thread | None = None
        self.numbered: tuple[Rule, ...] = ()
        #: The latest findings per directory.
        self.diagnostics: dict[str, tuple[Diagnostic, ...]] = {}

    def load_initial(self) -> tuple[Rule, ...]:
        """The first load, whole and unbudgeted (nothing is in force yet)."""
        plan = self._plan(None, initial=True, check=lambda: None)
        self._commit(plan)
        return plan.numbered

    def reload(self, only: Sequence[str] | None, budget: float, build: Builder,
               swap: Swapper, timeout: float | None = None) -> list[Diagnostic]:
        """Reload directories (all, or `only`) within `budget` seconds in all; returns the
        findings. Over budget, nothing changes and each directory reports QCB150."""
        with self._lock:
            deadline = time.monotonic() + budget
            run = _Run(deadline)
            result: Future[tuple[Plan, Future[None]]] = Future()

            def work() -> None:
                try:
                    result.set_result(self._build(only, run, build, swap))
                except BaseException as exc:  # handed to the waiting caller
                    result.set_exception(exc)

            # An abandoned reload still reading a file is waited for (within this budget), so
            # that at most one loader and two rule sets are ever alive.
            if self._worker is not None:
                self._worker.join(max(0.0, deadline - time.monotonic()))
                if self._worker.is_alive():
                    return self._over_budget(only, budget)
            self._worker = threading.Thread(target=work, name="qbcallbacks-loader", daemon=True)
            self._worker.start()
            try:
                plan, done = result.result(max(0.0, deadline - time.monotonic()))
            except (TimeoutError, OverBudget):
                if not run.abandon():  # queued just in time: it goes in force
                    plan, done = result.result()
                else:
                    return self._over_budget(only, budget)
            done.result(timeout)
            self._commit(plan)
            return [d for found in plan.found.values() for d in found]

    def _build(self, only: Sequence[str] | None, run: _Run, build: Builder,
               swap: Swapper) -> tuple[Plan, Future[None]]:
        # The collector would rescan the growing heap again and again, each time holding the
        # interpreter from the threads that ack and match: paused for the build, and a big
        # set is then frozen out of its later scans (reference counting still frees it).
        with collector_paused():
            plan = self._plan(only, initial=False, check=run.check)
            prepared = build(plan.numbered, run.check) if build is not None else None
            specs = time_specs(r.trigger for r in plan.numbered)
            if len(plan.numbered) >= FREEZE_AT:  # before the collector resumes
                gc.freeze()
        run.check()
        with run.lock:
            if run.abandoned:
                raise OverBudget("the reload was abandoned")
            run.queued = True
            return plan, swap(plan.numbered, prepared, specs)

    def _plan(self, only: Sequence[str] | None, *, initial: bool, check: Check) -> Plan:
        rules = dict(self._rules)
        found: dict[str, tuple[Diagnostic, ...]] = {}
        for directory in self.directories:
            if only is not None and directory not in only:
                continue
            load = load_directory(directory)
            check()
            found[directory] = load.diagnostics
            errors = any(d.severity == "error" for d in load.diagnostics)
            # A directory with errors keeps its last good rules; at the first load there are
            # none, so what loaded is used.
            if not (errors and not initial and directory in rules):
                rules[directory] = load.rules
        return Plan(rules, _renumbered(self.directories, rules, check), found)

    def _commit(self, plan: Plan) -> None:
        self._rules, self.numbered = plan.rules, plan.numbered
        for directory, found in plan.found.items():
            self._report(directory, found)

    def _over_budget(self, only: Sequence[str] | None, budget: float) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        for directory in self.directories:
            if only is None or directory in only:
                conf = str(Path(directory) / "callbacks.conf")
                found = (make_diagnostic(
                    "QCB150", f"reloading {directory} took longer than {budget:g} s (reading, "
                    "numbering and indexing the rules); the rules in force stay", file=conf),)
                self._report(directory, found)
                out.extend(found)
        return out

    def _report(self, directory: str, diagnostics: tuple[Diagnostic, ...]) -> None:
        self.diagnostics[directory] = diagnostics
        if diagnostics and self._on_diagnostics is not None:
            self._on_diagnostics(directory, diagnostics)


class _Run:
    """One reload's deadline, shared by the caller and the loader thread."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.lock = threading.Lock()
        self.abandoned = self.queued = False

    def check(self) -> None:
        """Raise once the deadline passed or the caller gave up; else let other threads
        run (a build holds the interpreter only between two checks)."""
        if self.abandoned or time.monotonic() > self.deadline:
            raise OverBudget("the reload ran past its budget")
        time.sleep(0)

    def abandon(self) -> bool:
        """Stop the build unless its swap is already queued (then False)."""
        with self.lock:
            self.abandoned = not self.queued
            return self.abandoned


def _renumbered(directories: Sequence[str], rules: dict[str, tuple[Rule, ...]],
                check: Check) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for rule in (r for d in directories for r in rules.get(d, ())):
        out.append(rule if rule.position == len(out)
                   else with_position(rule, len(out)))
        if len(out) % CHUNK == 0:
            check()
    return tuple(out)
