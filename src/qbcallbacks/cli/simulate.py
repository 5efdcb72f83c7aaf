"""`qbcallbacks simulate [PATH ...]`: a small farm on the reference supervisor, every event
dispatched through the engine with real callback runs, then a summary.

The run directory (`--workdir`, default `./qbcallbacks-run`) holds the farm database, the mbox
the mail callbacks write to, and whatever the callbacks write with relative paths (the scripts
run there, as the original runs them in the supervisor's directory). Exit status: 0 when every
firing the matcher predicts for the recorded event stream ran to an end, 1 when the engine lost,
added or left one unfinished, 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_WORKDIR = "qbcallbacks-run"


def run_options(func: F) -> F:
    """The options shared by every command that runs callbacks (`simulate`, `replay`)."""
    options = [
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                     show_default=True, help="Default seconds one callback run may take."),
        click.option("--audit", "audit_path", type=click.Path(dir_okay=False), default=None,
                     help=f"Audit database [default: ./{DEFAULT_WORKDIR}/audit.db]."),
        click.option("--log-dir", type=click.Path(file_okay=False), default=None,
                     help="Where <jobid>.cb callback logs go "
                          f"[default: ./{DEFAULT_WORKDIR}/logs]."),
        click.option("--mode", type=click.Choice(["isolated", "in-process"]), default="isolated",
                     show_default=True, help="How Python callbacks run."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def callback_dirs(paths: Sequence[str], qbconf: str | None) -> list[str]:
    """Directories from PATH arguments, else from a qb.conf, else `$QBDIR/callback`; made
    absolute so that changing directory later cannot change their meaning."""
    from ..engine.loader import expand_callback_path
    from ..engine.qbconf import read_qbconf

    dirs = expand_callback_path(paths) if paths or qbconf is None else \
        read_qbconf(qbconf).callback_path()
    return [os.path.abspath(d) for d in dirs]


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run callbacks in `path`: their relative files land there, not in the caller's tree."""
    old = os.getcwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@click.command("simulate")
@click.argument("paths", nargs=-1)
@click.option("--qbconf", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Read supervisor_universal_callback_path from this qb.conf.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the farm.")
@click.option("--groups", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Process groups to submit.")
@click.option("--frames", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Frames per job.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Chance that one run of a frame fails.")
@click.option("--workdir", type=click.Path(file_okay=False), default=DEFAULT_WORKDIR,
              show_default=True, help="Run directory: farm database, mbox, callbacks' files.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar.")
@run_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], qbconf: str | None, seed: int,
            groups: int, frames: int, fail_rate: float, workdir: str, progress: bool,
            timeout: float, audit_path: str | None, log_dir: str | None, mode: str) -> None:
    """Run a small simulated farm through the callbacks of PATH (default $QBDIR/callback).

    Each PATH is a callback directory or a comma-separated list of them.
    """
    from rich.console import Console

    from ..engine.audit import AuditStore
    from ..engine.dispatcher import Dispatcher, DispatcherConfig
    from ..engine.farm import Farm, FarmPlan
    from ..engine.mail import MboxTransport
    from ..engine.sqlite_host import SqliteSupervisor
    from ..engine.verify import verify_session
    from ._summary import print_summary, progress_bar

    console = Console(stderr=False, highlight=False)
    dirs = callback_dirs(paths, qbconf)
    run_dir = Path(workdir).resolve()
    audit_file = Path(audit_path).resolve() if audit_path else run_dir / "audit.db"
    logs = Path(log_dir).resolve() if log_dir else run_dir / "logs"
    farm_db = run_dir / "farm.db"
    for stale in (farm_db, farm_db.with_name("farm.db-wal"), farm_db.with_name("farm.db-shm")):
        stale.unlink(missing_ok=True)
    plan = FarmPlan(seed=seed, groups=groups, frames=frames, fail_rate=fail_rate)

    def show_diagnostics(directory: str, diagnostics: Sequence[Any]) -> None:
        for d in diagnostics:
            console.print(d.render(), markup=False)

    started = time.perf_counter()
    with working_directory(run_dir):
        supervisor = SqliteSupervisor(farm_db, mail=MboxTransport(run_dir / "mail.mbox"))
        audit = AuditStore(audit_file)
        dispatcher = Dispatcher(dirs, supervisor, mode=mode,  # type: ignore[arg-type]
                                config=DispatcherConfig(timeout=timeout, log_dir=str(logs)),
                                audit=audit, on_diagnostics=show_diagnostics)
        supervisor.listener = dispatcher.emit
        farm = Farm(supervisor, plan, settle=lambda: dispatcher.wait_idle(max(60.0, timeout)))
        try:
            if progress:
                with progress_bar(console) as (bar, update):
                    del bar
                    report = farm.run(update)
            else:
                report = farm.run()
        finally:
            dispatcher.close(timeout=max(60.0, timeout))
            supervisor.close()
        verification = verify_session(audit, dispatcher.session, dispatcher.rules)
        print_summary(console, audit, dispatcher.session, verification, elapsed=time.perf_counter()
                      - started, jobs=report.jobs_by_status, audit_path=audit_file, log_dir=logs,
                      run_dir=run_dir)
        audit.close()
    ctx.exit(0 if verification.ok else 1)
