"""What `simulate` and `replay` print: a progress bar while running, a summary table after."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..audit.reconcile import Verification
from ..audit.store import AuditStore
from ..model.statuses import FAILED_FIRING_STATUSES, FINAL_FIRING_STATUSES

STATUS_COLUMNS = (*FINAL_FIRING_STATUSES, "pending")


@contextlib.contextmanager
def progress_bar(label: str = "frames", verb: str = "simulating",
                 ) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on standard error, or None when standard error is not a terminal: the
    bar is for a person watching, never part of what a pipe or a file receives."""
    try:
        shown = sys.stderr.isatty()
    except (AttributeError, ValueError):
        shown = False
    if not shown:
        yield None
        return
    bar = Progress(TextColumn(f"[bold]{verb}[/]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn(label), TimeElapsedColumn(),
                   console=Console(stderr=True, highlight=False), transient=False)
    task = bar.add_task("farm", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


def print_summary(console: Console, audit: AuditStore, session: int,
                  verification: Verification, *, elapsed: float, audit_path: Path | str,
                  log_dir: Path, jobs: dict[str, int] | None = None,
                  run_dir: Path | None = None) -> None:
    counts = audit.counts(session)
    callbacks = sorted({c for c, _ in counts})
    used = [s for s in STATUS_COLUMNS if any(st == s for _, st in counts)]
    table = Table(title="Firings per callback", title_justify="left")
    table.add_column("callback")
    for status in used:
        table.add_column(status, justify="right")
    table.add_column("total", justify="right")
    for cb in callbacks:
        row = [counts.get((cb, s), 0) for s in used]
        table.add_row(cb, *(str(n) for n in row), str(sum(row)))
    console.print(table)

    slow = sorted((r for r in audit.query(session=session) if r.duration is not None),
                  key=lambda r: r.duration or 0.0, reverse=True)[:5]
    if slow:
        st = Table(title="Slowest runs", title_justify="left")
        for col in ("callback", "job", "event", "status", "seconds"):
            st.add_column(col, justify="right" if col in ("job", "seconds") else "left")
        for r in slow:
            st.add_row(r.callback, str(r.job), r.event.format(), r.status,
                       f"{r.duration or 0.0:.3f}")
        console.print(st)

    failed = sum(n for (_, st), n in counts.items() if st in FAILED_FIRING_STATUSES)
    verdict = ("[green]every predicted firing ran[/]" if verification.ok and not failed else
               f"[red]every predicted firing ran; {failed} failed[/]" if verification.ok else
               f"[red]engine mismatch: {len(verification.missing)} missing, "
               f"{len(verification.unexpected)} unexpected, {verification.unfinished} "
               f"unfinished, {verification.not_run} not run[/]")
    console.print(f"{verification.events} events, {verification.recorded} firings "
                  f"({verification.predicted} predicted by the matcher) in {elapsed:.2f} s: "
                  + verdict, soft_wrap=True)
    if jobs:
        console.print("jobs: " + ", ".join(f"{n} {s}" for s, n in jobs.items()), soft_wrap=True)
    console.print(f"audit database: {audit_path}  (qbcallbacks history --audit {audit_path})",
                  markup=False, soft_wrap=True)
    console.print(f"callback logs:  {log_dir}", markup=False, soft_wrap=True)
    if run_dir is not None:
        console.print(f"run directory:  {run_dir}", markup=False, soft_wrap=True)


def print_json_summary(session: Any, counts: dict[tuple[str, str], int],
                       verification: Verification, *, elapsed: float,
                       jobs: dict[str, int] | None = None) -> None:
    """The summary as one JSON object on standard output (`--format json`)."""
    per_callback: dict[str, dict[str, int]] = {}
    for (callback, status), n in counts.items():
        per_callback.setdefault(callback, {})[status] = n
    data = {
        "events": verification.events,
        "firings": verification.recorded,
        "predicted": verification.predicted,
        "engine_ok": verification.ok,
        "missing": len(verification.missing),
        "unexpected": len(verification.unexpected),
        "unfinished": verification.unfinished,
        "not_run": verification.not_run,
        "failed": sum(n for (_, s), n in counts.items() if s in FAILED_FIRING_STATUSES),
        "callbacks": per_callback,
        "jobs": jobs or {},
        "seconds": round(elapsed, 3),
        "audit": str(session.audit_file),
        "logs": str(session.logs),
        "run_dir": str(session.run_dir),
    }
    click.echo(json.dumps(data, indent=2))
