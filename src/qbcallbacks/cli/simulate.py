"""`qbcallbacks simulate [PATH ...]`: a small farm on the reference supervisor, every event
dispatched through the engine with real callback runs, then a summary.

The run directory (`--workdir`, default `./qbcallbacks-run`) holds the farm database, the mbox
the mail callbacks write to, and whatever the callbacks write with relative paths (the scripts
run there, as the original runs them in the supervisor's directory). Exit status: 0 when every
firing the matcher predicts for the recorded event stream ran to an end, 1 when the engine lost,
added or left one unfinished, 2 on a usage error.
"""

from __future__ import annotations

import click

from ._session import DEFAULT_WORKDIR, callback_dirs, finish_session, run_options, run_session


@click.command("simulate")
@click.argument("paths", nargs=-1)
@click.option("--qbconf", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Read supervisor_universal_callback_path and the mail settings (mail_host, "
                   "mail_port, mail_domain, mail_from) from this qb.conf.")
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

    from ..config.qbconf import read_qbconf
    from ..reference.farm import Farm, FarmPlan
    from ._summary import progress_bar

    console = Console(stderr=False, highlight=False)
    plan = FarmPlan(seed=seed, groups=groups, frames=frames, fail_rate=fail_rate)
    with run_session(callback_dirs(paths, qbconf), db_name="farm.db", timeout=timeout,
                     audit_path=audit_path, log_dir=log_dir, mode=mode, workdir=workdir,
                     console=console, mail=read_qbconf(qbconf).mail() if qbconf else None,
                     ) as session:
        session.supervisor.listener = session.dispatcher.emit
        farm = Farm(session.supervisor, plan,
                    settle=lambda: session.dispatcher.wait_idle(max(60.0, timeout)))
        if progress:
            with progress_bar(console) as (_, update):
                report = farm.run(update)
        else:
            report = farm.run()
    ok = finish_session(session, jobs=report.jobs_by_status)
    ctx.exit(0 if ok else 1)
