"""The rules in force, per callback directory, and loading them off the matcher thread.

A reload reads and validates directories on a loader thread under a time budget; the
dispatcher then swaps the new rules in between two events. A directory whose new
configuration has errors, or whose load exceeds the budget, keeps its last good rules and the
findings say why, so a saved file with a pathological line never stops event intake.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from ..config.load import load_directory
from ..errors import Diagnostic, make_diagnostic
from ..model.rules import Rule

DiagnosticsHandler = Callable[[str, Sequence[Diagnostic]], None]


class RuleBook:
    """The last good rules of each directory, numbered in firing order over the whole path."""

    def __init__(self, directories: Sequence[str],
                 on_diagnostics: DiagnosticsHandler | None = None) -> None:
        self.directories = list(directories)
        self._on_diagnostics = on_diagnostics
        self._rules: dict[str, tuple[Rule, ...]] = {}
        self._lock = threading.Lock()
        self.numbered: tuple[Rule, ...] = ()
        #: The latest findings per directory.
        self.diagnostics: dict[str, tuple[Diagnostic, ...]] = {}

    def load(self, *, initial: bool, only: Sequence[str] | None = None,
             budget: float | None = None) -> tuple[tuple[Rule, ...], list[Diagnostic]]:
        """Load directories (all, or `only`); returns the renumbered rules and the findings.

        With a `budget`, each directory is loaded on a loader thread; one that takes longer
        keeps its last good rules (its load finishes in the background and is discarded)."""
        found: list[Diagnostic] = []
        for directory in self.directories:
            if only is not None and directory not in only:
                continue
            if budget is None:
                rules, diagnostics = _load(directory)
            else:
                outcome = _load_within(directory, budget)
                if outcome is None:
                    conf = str(Path(directory) / "callbacks.conf")
                    diagnostics = (make_diagnostic(
                        "QCB150", f"loading {directory} took longer than {budget:g} s; the "
                        "last good rules stay in force", file=conf),)
                    self._report(directory, diagnostics, found)
                    continue
                rules, diagnostics = outcome
            with self._lock:
                errors = [d for d in diagnostics if d.severity == "error"]
                # A directory with errors keeps its last good rules; at the first load there
                # are none, so what loaded is used.
                if not (errors and not initial and directory in self._rules):
                    self._rules[directory] = rules
            self._report(directory, diagnostics, found)
        with self._lock:
            self.numbered = self._renumbered()
            return self.numbered, found

    def _report(self, directory: str, diagnostics: tuple[Diagnostic, ...],
                found: list[Diagnostic]) -> None:
        self.diagnostics[directory] = diagnostics
        found.extend(diagnostics)
        if diagnostics and self._on_diagnostics is not None:
            self._on_diagnostics(directory, diagnostics)

    def _renumbered(self) -> tuple[Rule, ...]:
        out: list[Rule] = []
        for rule in (r for d in self.directories for r in self._rules.get(d, ())):
            out.append(rule if rule.position == len(out)
                       else rule.model_copy(update={"position": len(out)}))
        return tuple(out)


def _load(directory: str) -> tuple[tuple[Rule, ...], tuple[Diagnostic, ...]]:
    load = load_directory(directory)
    return tuple(load.rules), tuple(load.diagnostics)


def _load_within(directory: str,
                 budget: float) -> tuple[tuple[Rule, ...], tuple[Diagnostic, ...]] | None:
    done: Future[tuple[tuple[Rule, ...], tuple[Diagnostic, ...]]] = Future()

    def work() -> None:
        try:
            done.set_result(_load(directory))
        except BaseException as exc:  # handed to the waiting caller
            done.set_exception(exc)

    threading.Thread(target=work, name="qbcallbacks-loader", daemon=True).start()
    try:
        return done.result(budget)
    except TimeoutError:
        return None
