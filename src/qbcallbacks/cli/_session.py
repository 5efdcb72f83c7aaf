"""What every command that runs callbacks for real shares: options, directories, and a run
session (reference supervisor, audit trail, dispatcher) opened in the run directory."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from ..audit.reconcile import verify_session
from ..audit.store import AuditError, AuditStore
from ..dispatch.dispatcher import Dispatcher, DispatcherSettings
from ..reference.mail import MboxTransport
from ..reference.sqlite import SqliteSupervisor
from ._summary import print_summary

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
    from ..config.load import expand_callback_path
    from ..config.qbconf import read_qbconf

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


@dataclass
class RunSession:
    """The pieces of one run, and where its files are."""

    console: Console
    run_dir: Path
    audit_file: Path
    logs: Path
    supervisor: SqliteSupervisor
    audit: AuditStore
    dispatcher: Dispatcher
    timeout: float
    started: float


@contextlib.contextmanager
def run_session(directories: Sequence[str], *, db_name: str, timeout: float,
                audit_path: str | None, log_dir: str | None, mode: str, workdir: str,
                console: Console) -> Iterator[RunSession]:
    """Open a fresh reference supervisor (`<workdir>/<db_name>`), the audit trail and a
    dispatcher, inside the run directory; the dispatcher is drained and closed on the way out.

    Paths are resolved before the run directory is entered, so relative arguments keep the
    meaning they had on the command line.
    """
    dirs = [str(Path(d).resolve()) for d in directories]
    run_dir = Path(workdir).resolve()
    audit_file = Path(audit_path).resolve() if audit_path else run_dir / "audit.db"
    logs = Path(log_dir).resolve() if log_dir else run_dir / "logs"
    farm_db = run_dir / db_name
    for stale in (farm_db, farm_db.with_name(f"{db_name}-wal"),
                  farm_db.with_name(f"{db_name}-shm")):
        stale.unlink(missing_ok=True)

    def show(directory: str, diagnostics: Sequence[Any]) -> None:
        for d in diagnostics:
            console.print(d.render(), markup=False)

    started = time.perf_counter()
    with working_directory(run_dir):
        try:
            audit = AuditStore(audit_file)
        except AuditError as exc:  # in use by a live writer, or unreadable
            raise click.ClickException(str(exc)) from None
        supervisor = SqliteSupervisor(farm_db, mail=MboxTransport(run_dir / "mail.mbox"))
        dispatcher = Dispatcher(dirs, supervisor, mode=mode,  # type: ignore[arg-type]
                                settings=DispatcherSettings(timeout=timeout, log_dir=str(logs)),
                                audit=audit, on_diagnostics=show)
        try:
            yield RunSession(console, run_dir, audit_file, logs, supervisor, audit, dispatcher,
                             timeout, started)
        finally:
            dispatcher.close(timeout=max(60.0, timeout))
            supervisor.close()


def finish_session(session: RunSession, *, jobs: dict[str, int] | None = None) -> bool:
    """Check the audit trail against the matcher's prediction, print the summary, close the
    trail; True when every predicted firing ran to an end."""
    verification = verify_session(session.audit, session.dispatcher.session,
                                  session.dispatcher.rules)
    print_summary(session.console, session.audit, session.dispatcher.session, verification,
                  elapsed=time.perf_counter() - session.started, jobs=jobs,
                  audit_path=session.audit_file, log_dir=session.logs, run_dir=session.run_dir)
    session.audit.close()
    if session.dispatcher.previous_run_died:
        session.console.print(f"the previous run on {session.audit_file} did not close (its host "
                              "died); its unfinished work was recovered or marked lost")
        return False
    return verification.ok
