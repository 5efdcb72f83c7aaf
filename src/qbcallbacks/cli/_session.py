"""What every command that runs callbacks for real shares: options, directories, and a run
session (reference supervisor, audit trail, dispatcher) opened in the run directory."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from rich.console import Console

from ..audit.backends import is_url, open_audit
from ..audit.reconcile import verify_session
from ..audit.store import AuditError, AuditStore
from ..config.qbconf import MailSettings, QbConf
from ..dispatch.dispatcher import Dispatcher, DispatcherSettings
from ..matching.clock import Clock
from ..model.statuses import FAILED_FIRING_STATUSES
from ..reference.mail import transport_for
from ..reference.sqlite import SqliteSupervisor
from ._summary import print_json_summary, print_summary
from ._targets import SetupError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_WORKDIR = "qbcallbacks-run"


def run_options(func: F) -> F:
    """The options shared by every command that runs callbacks (`simulate`, `replay`)."""
    options = [
        click.option("--qbconf", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Read supervisor_universal_callback_path from this qb.conf "
                          "(not with PATH)."),
        click.option("--workdir", type=click.Path(file_okay=False), default=DEFAULT_WORKDIR,
                     show_default=True,
                     help="Run directory: farm database, mbox, callbacks' files."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                     show_default=True, help="Default seconds one callback run may take."),
        click.option("--audit", "audit_path", type=click.Path(dir_okay=False), default=None,
                     help=f"Audit database [default: ./{DEFAULT_WORKDIR}/audit.db]."),
        click.option("--log-dir", type=click.Path(file_okay=False), default=None,
                     help="Where <jobid>.cb callback logs go "
                          f"[default: ./{DEFAULT_WORKDIR}/logs]."),
        click.option("--mode", type=click.Choice(["isolated", "in-process"]), default="isolated",
                     show_default=True, help="How Python callbacks run."),
        click.option("--progress/--no-progress", default=True, show_default=True,
                     help="Show a progress bar on standard error when it is a terminal (never "
                          "with --format json)."),
        click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                     show_default=True,
                     help="Summary as text tables or as one JSON object."),
        click.option("--allow-failures", is_flag=True,
                     help="Exit 0 even when callbacks ended in error, timeout or crash."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def callback_dirs(paths: Sequence[str], qbconf: str | None) -> list[str]:
    """Directories from PATH arguments, else from a qb.conf (`--qbconf`, `$QB_CONF`,
    `/etc/qb.conf`), else `$QBDIR/callback`; made absolute so that changing directory later
    cannot change their meaning. PATH and `--qbconf` together are a usage error."""
    from ..config.load import expand_callback_path
    from ._targets import default_dirs, refuse_both

    refuse_both(paths, qbconf)
    dirs = expand_callback_path(paths) if paths else default_dirs(qbconf)
    return [os.path.abspath(d) for d in dirs]


def site_conf(qbconf: str | None) -> QbConf | None:
    """The qb.conf whose site settings (mail, job-specific code) a run follows: `--qbconf`,
    else `$QB_CONF` or `/etc/qb.conf` when present; callback directories given as PATH do not
    change where the other settings come from."""
    from ..config.qbconf import QbConfError, read_qbconf
    from ._targets import default_qbconf

    conf = qbconf or default_qbconf()
    if conf is None:
        return None
    try:
        return read_qbconf(conf)
    except QbConfError:
        raise SetupError(f"{'--qbconf' if qbconf else '$QB_CONF'}: {conf} cannot be read"
                         ) from None


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
    audit_file: Path | str
    logs: Path
    supervisor: SqliteSupervisor
    audit: AuditStore
    dispatcher: Dispatcher
    timeout: float
    started: float


@contextlib.contextmanager
def run_session(directories: Sequence[str], *, db_name: str, timeout: float,
                audit_path: str | None, log_dir: str | None, mode: str, workdir: str,
                console: Console, mail: MailSettings | None = None,
                clock: Clock | None = None,
                time_events: Literal["scheduled", "stream"] = "scheduled",
                allow_job_code: bool = False,
                ) -> Iterator[RunSession]:
    """Open a fresh reference supervisor (`<workdir>/<db_name>`), the audit trail and a
    dispatcher, inside the run directory; the dispatcher is drained and closed on the way out.

    Paths are resolved before the run directory is entered, so relative arguments keep the
    meaning they had on the command line.
    """
    dirs = [str(Path(d).resolve()) for d in directories]
    run_dir = Path(workdir).resolve()
    audit_file: Path | str = (audit_path if is_url(audit_path) else Path(audit_path).resolve()
                              ) if audit_path else run_dir / "audit.db"
    logs = Path(log_dir).resolve() if log_dir else run_dir / "logs"
    farm_db = run_dir / db_name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"--workdir: cannot create {run_dir}: {exc.strerror}") from None
    for stale in (farm_db, farm_db.with_name(f"{db_name}-wal"),
                  farm_db.with_name(f"{db_name}-shm")):
        stale.unlink(missing_ok=True)

    caller = os.getcwd()

    def show(directory: str, diagnostics: Sequence[Any]) -> None:
        # Printed exactly as `check` prints them: plain lines, paths relative to the caller.
        for d in diagnostics:
            click.echo(d.moved(file=_relative(d.file, caller)).render(), err=True)

    started = time.perf_counter()
    with working_directory(run_dir):
        try:
            audit = open_audit(audit_file)  # first: a bad --audit leaves nothing open
        except AuditError as exc:  # in use by a live writer, or unreadable
            raise SetupError(str(exc)) from None
        supervisor = SqliteSupervisor(farm_db, mail=transport_for(mail, run_dir / "mail.mbox"))
        dispatcher = Dispatcher(dirs, supervisor, mode=mode,  # type: ignore[arg-type]
                                settings=DispatcherSettings(timeout=timeout, log_dir=str(logs),
                                                            time_events=time_events,
                                                            allow_job_code=allow_job_code),
                                audit=audit, clock=clock, on_diagnostics=show)
        try:
            yield RunSession(console, run_dir, audit_file, logs, supervisor, audit, dispatcher,
                             timeout, started)
        finally:
            dispatcher.close(timeout=max(60.0, timeout))
            supervisor.close()


def _relative(path: str, base: str) -> str:
    if not os.path.isabs(path):
        return path
    rel = os.path.relpath(path, base)
    return path if rel.startswith("..") else rel


def finish_session(session: RunSession, *, jobs: dict[str, int] | None = None,
                   fmt: str = "text", allow_failures: bool = True) -> bool:
    """Check the audit trail against the matcher's prediction, print the summary, close the
    trail; True when every predicted firing ran to an end and (unless `allow_failures`) no
    callback ended in error, timeout, crash or was lost."""
    verification = verify_session(session.audit, session.dispatcher.session,
                                  session.dispatcher.rules)
    counts = session.audit.counts(session.dispatcher.session)
    failed = sum(n for (_, status), n in counts.items() if status in FAILED_FIRING_STATUSES)
    elapsed = time.perf_counter() - session.started
    if fmt == "json":
        print_json_summary(session, counts, verification, elapsed=elapsed, jobs=jobs)
    else:
        print_summary(session.console, session.audit, session.dispatcher.session,
                      verification, elapsed=elapsed, jobs=jobs, audit_path=session.audit_file,
                      log_dir=session.logs, run_dir=session.run_dir)
        if failed:
            session.console.print(f"{failed} firing(s) ended in error, timeout or crash, or "
                                  "were lost (qbcallbacks history --status error ...)"
                                  + ("" if allow_failures else "; exit status 1 "
                                     "(--allow-failures accepts them)"),
                                  markup=False, soft_wrap=True)
    session.audit.close()
    if session.dispatcher.previous_run_died:
        session.console.print(f"the previous run on {session.audit_file} did not close (its host "
                              "died); its unfinished work was recovered or marked lost",
                              markup=False, soft_wrap=True)
        return False
    return verification.ok and (allow_failures or not failed)
