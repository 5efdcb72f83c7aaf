"""`qbcallbacks simulate [PATH ...]`: a small farm on the reference supervisor, every event
dispatched through the engine with real callback runs, then a summary.

The run directory (`--workdir`, default `./qbcallbacks-run`) holds the farm database, the mbox
the mail callbacks write to, and whatever the callbacks write with relative paths (the scripts
run there, as the original runs them in the supervisor's directory). Exit status: 0 when every
firing the matcher predicts ran to an end and none failed, 1 when a callback ended in error,
timeout or crash (unless `--allow-failures`) or the engine lost, added or left a firing
unfinished, 2 on a usage or environment error.
"""

from __future__ import annotations

import click

from ._session import callback_dirs, finish_session, run_options, run_session, site_conf


@click.command("simulate")
@click.argument("paths", nargs=-1)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the farm.")
@click.option("--groups", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Process groups to submit.")
@click.option("--frames", type=click.IntRange(1, 1000), default=4, show_default=True,
              help="Frames per job.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Chance that one run of a frame fails.")
@run_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], qbconf: str | None, seed: int,
            groups: int, frames: int, fail_rate: float, workdir: str, progress: bool,
            timeout: float, audit_path: str | None, log_dir: str | None, mode: str, fmt: str,
            allow_failures: bool) -> None:
    """Run a small simulated farm through the callbacks of PATH and summarise the firings.

    Each PATH is a callback directory or a comma-separated list of them; with none, the
    callback path of --qbconf, $QB_CONF or /etc/qb.conf, else $QBDIR/callback. The summary
    counts firings per callback and status and lists the slowest runs. Exit status: 0, 1 when
    a callback ended in error, timeout or crash (unless --allow-failures) or the engine lost a
    firing, 2 on usage or environment errors.
    """
    from rich.console import Console

    from ..reference.farm import Farm, FarmPlan
    from ._summary import progress_bar

    dirs = callback_dirs(paths, qbconf)
    conf = site_conf(qbconf)
    console = Console(stderr=False, highlight=False)
    plan = FarmPlan(seed=seed, groups=groups, frames=frames, fail_rate=fail_rate)
    with run_session(dirs, db_name="farm.db", timeout=timeout,
                     audit_path=audit_path, log_dir=log_dir, mode=mode, workdir=workdir,
                     console=console, mail=conf.mail() if conf else None,
                     allow_job_code=conf.allow_job_code if conf else False,
                     ) as session:
        session.supervisor.listener = session.dispatcher.emit
        farm = Farm(session.supervisor, plan,
                    settle=lambda: session.dispatcher.wait_idle(max(60.0, timeout)))
        if progress and fmt == "text":
            with progress_bar() as update:
                report = farm.run(update)
        else:
            report = farm.run()
    ok = finish_session(session, jobs=report.jobs_by_status, fmt=fmt,
                        allow_failures=allow_failures)
    ctx.exit(0 if ok else 1)
