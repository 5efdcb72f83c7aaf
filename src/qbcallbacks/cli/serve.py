"""`qbcallbacks serve [PATH ...] --listen unix:SOCKET|tcp:HOST:PORT`: the engine as a service
for a supervisor in any language (the protocol: `spec/service.md`).

Runs until SIGTERM, SIGINT or a `drain` request, then runs what it accepted and exits 0 (1 if
the drain timed out and something was cancelled or left for the next start; 2 on a usage or
environment error).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ._session import DEFAULT_WORKDIR, callback_dirs, site_conf, working_directory


@click.command("serve")
@click.argument("paths", nargs=-1)
@click.option("--listen", required=True, metavar="unix:SOCKET|tcp:HOST:PORT",
              help="Where supervisors connect (JSON-RPC 2.0, one JSON object per line).")
@click.option("--http", "http", default=None, metavar="HOST:PORT",
              help="Also serve POST /events, GET /health and GET /metrics here.")
@click.option("--qbconf", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Read supervisor_universal_callback_path from this qb.conf (not with PATH).")
@click.option("--workdir", type=click.Path(file_okay=False), default=DEFAULT_WORKDIR,
              show_default=True, help="Run directory: callbacks run there.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Default seconds one callback run may take; also the "
              "longest a call to the supervisor waits.")
@click.option("--audit", "audit_path", default=None,
              help=f"Audit database [default: ./{DEFAULT_WORKDIR}/audit.db].")
@click.option("--log-dir", type=click.Path(file_okay=False), default=None,
              help=f"Where <jobid>.cb callback logs go [default: ./{DEFAULT_WORKDIR}/logs].")
@click.option("--mode", type=click.Choice(["isolated", "in-process"]), default="isolated",
              show_default=True, help="How Python callbacks run.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=None,
              help="Seconds a drain may take before what is left is cancelled [default: none].")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], listen: str, http: str | None,
            qbconf: str | None, workdir: str, timeout: float, audit_path: str | None,
            log_dir: str | None, mode: str, drain_timeout: float | None) -> None:
    """Serve the callbacks of PATH to a supervisor over a socket until stopped.

    Each PATH is a callback directory or a comma-separated list of them; with none, the
    callback path of --qbconf, $QB_CONF or /etc/qb.conf, else $QBDIR/callback. Events are
    acknowledged once journaled; callbacks' questions go back to the supervisor.
    """
    from ..service.app import (
        ListenError,
        ServiceOptions,
        catch_stop_signals,
        open_service,
        serve_until_stopped,
    )
    from ._targets import SetupError

    dirs = callback_dirs(paths, qbconf)
    conf = site_conf(qbconf)
    run_dir = Path(workdir).resolve()
    kind, _, where = listen.partition(":")
    if kind == "unix" and where:  # relative to where the command was given
        listen = f"unix:{os.path.abspath(where)}"
    options = ServiceOptions(
        directories=[str(Path(d).resolve()) for d in dirs], listen=listen, http=http,
        audit=(audit_path if audit_path and "://" in audit_path  # a database URL
               else Path(audit_path).resolve() if audit_path else run_dir / "audit.db"),
        log_dir=str(Path(log_dir).resolve() if log_dir else run_dir / "logs"),
        timeout=timeout, mode=mode,  # type: ignore[arg-type]
        allow_job_code=conf.allow_job_code if conf else False, drain_timeout=drain_timeout,
        allow_global_callbacks=conf.allow_global_callbacks if conf else False)

    def show(directory: str, diagnostics: object) -> None:
        for d in diagnostics:  # type: ignore[attr-defined]
            click.echo(d.render(), err=True)

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"--workdir: cannot create {run_dir}: {exc.strerror}") from None
    with working_directory(run_dir):
        try:
            with open_service(options, on_diagnostics=show,
                              stopped=catch_stop_signals()) as running:
                where_http = f" and http:{options.http}" if options.http else ""
                drained = serve_until_stopped(running, lambda: click.echo(
                    f"qbcallbacks serve: listening on {listen}{where_http}", err=True))
        except ListenError as exc:
            raise SetupError(str(exc)) from None
    click.echo("qbcallbacks serve: drained and stopped" if drained else
               "qbcallbacks serve: stopped; the drain timed out", err=True)
    ctx.exit(0 if drained else 1)
