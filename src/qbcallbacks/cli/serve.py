"""`qbcallbacks serve [PATH ...] --listen unix:SOCKET|tcp:HOST:PORT`: the engine as a service
for a supervisor in any language (the protocol: `spec/service.md`).

Runs until SIGTERM, SIGINT or a `drain` request, then runs what it accepted and exits 0 (1 if
the drain timed out and something was cancelled or left for the next start; 2 on a usage or
environment error). SIGHUP reloads the callback directories.

The trail, its WAL and the journal are 0640 with `--socket-group`, else 0600, whatever the
umask it was started with (which the callbacks keep).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._session import DEFAULT_WORKDIR, callback_dirs, site_conf, working_directory

if TYPE_CHECKING:
    from ..config.qbconf import QbConf
    from ..service.listen import Guard


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
@click.option("--executor", type=click.Choice(["local", "celery"]), default=None,
              help="Where callbacks run: this host's pools, or Celery workers "
              "[default: supervisor_callback_executor of the qb.conf, else local].")
@click.option("--broker", default=None, metavar="URL",
              help="The Celery executor's broker [default: supervisor_callback_broker].")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=None,
              help="Seconds a drain may take before what is left is cancelled [default: none].")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="The shared secret TCP and HTTP clients must give (first line of FILE).")
@click.option("--max-connections", type=click.IntRange(min=1), default=64, show_default=True,
              help="Connections each listener keeps open at once; more are refused.")
@click.option("--socket-mode", default="0660", show_default=True, metavar="OCTAL",
              help="The Unix socket's permissions, set before it listens.")
@click.option("--socket-group", default=None, metavar="GROUP",
              help="The Unix socket's group (its members may connect; files become 0640).")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds a new connection has to say hello, and an HTTP "
              "read may wait (a whole body: three times that).")
@click.option("--watch", is_flag=True, help="Reload the callback directories when they change.")
@click.option("--reload-budget", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, help="Seconds a whole reload may take (reading, numbering, "
              "indexing); a slower one keeps the rules in force and reports QCB150.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], listen: str, http: str | None,
            qbconf: str | None, workdir: str, timeout: float, audit_path: str | None,
            log_dir: str | None, mode: str, executor: str | None, broker: str | None,
            drain_timeout: float | None, token_file: str | None, max_connections: int,
            socket_mode: str, socket_group: str | None, read_timeout: float,
            watch: bool, reload_budget: float) -> None:
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

    guard = _guard(listen, http, token_file, max_connections, socket_mode, socket_group,
                   read_timeout)
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
        allow_global_callbacks=conf.allow_global_callbacks if conf else False,
        settings={**runs_where(conf, executor, broker), "reload_budget": reload_budget},
        guard=guard, watch=watch, file_mode=0o640 if socket_group else 0o600)

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
                drained = serve_until_stopped(running, lambda: _ready(
                    f"qbcallbacks serve: listening on {listen}{where_http}"))
        except ListenError as exc:
            raise SetupError(str(exc)) from None
    click.echo("qbcallbacks serve: drained and stopped" if drained else
               "qbcallbacks serve: stopped; the drain timed out", err=True)
    ctx.exit(0 if drained else 1)


def _ready(message: str) -> None:
    """Say the service listens, its start-up done (see `_settle_heap`)."""
    _settle_heap()
    click.echo(message, err=True)


#: The young generation's collection threshold once `serve` listens (the interpreter's
#: default is 700): see `_settle_heap`.
YOUNG_THRESHOLD = 5600


def _settle_heap() -> None:
    """Move what the start-up made (modules, rules, the trail's objects: all of it lives as
    long as the process) out of the collector's reach (`gc.freeze`). Otherwise the young
    generations still hold much of it when events start to come, and the collection one
    event's allocations trigger on the connection's thread scans it: milliseconds for that
    event's ack, where an ack otherwise takes tens of microseconds.

    Then the young collections are made rarer. Each one scans what was made since the last
    and is still alive, which is mostly the events in flight (read, journaled, not yet
    matched) whatever the threshold; one every 700 objects made came every ~75 events and
    landed inside about one ack in a hundred, 0.1-0.5 ms each. At 8 times that, a run of
    one-at-a-time events sees a collection in about one ack in a thousand, and the collector's
    time overall falls by about as much: fewer passes over the same objects in flight."""
    import gc

    gc.freeze()
    if gc.get_threshold()[0]:  # 0: someone switched the collector off; it stays so
        gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def runs_where(conf: QbConf | None, executor: str | None, broker: str | None,
               ) -> dict[str, object]:
    """The executor settings: the options, else the qb.conf's; a usage error when the
    celery executor has no broker or Celery is not installed."""
    import importlib.util

    from ..config.qbconf import QbConfError
    from ._targets import SetupError

    try:
        kind = executor or (conf.callback_executor if conf else None) or "local"
    except QbConfError as exc:
        raise SetupError(str(exc)) from None
    if kind == "local":
        return {}
    url = broker or (conf.callback_broker if conf else None)
    if not url:
        raise SetupError("--executor celery needs --broker URL "
                         "(or supervisor_callback_broker in qb.conf)")
    if importlib.util.find_spec("celery") is None:
        raise SetupError("--executor celery needs Celery: pip install 'qbcallbacks[celery]'")
    return {"executor": "celery", "broker": url}


def _guard(listen: str, http: str | None, token_file: str | None, max_connections: int,
           socket_mode: str, socket_group: str | None, read_timeout: float) -> Guard:
    """What every listener enforces; a TCP or HTTP address beyond loopback needs a token."""
    from ..service.access import TokenError, is_loopback, read_token
    from ..service.listen import Guard
    from ._targets import SetupError

    try:
        token = read_token(token_file) if token_file else None
        guard = Guard(token=token, max_connections=max_connections,
                      socket_mode=_mode(socket_mode), socket_group=socket_group,
                      read_timeout=read_timeout)
    except (TokenError, ValueError) as exc:
        raise SetupError(str(exc)) from None
    if token is None:
        for name, where in (("--listen", _tcp_host(listen)), ("--http", _http_host(http))):
            if where is not None and not is_loopback(where):
                raise SetupError(f"{name}: {where} is not a loopback address; give "
                                 "--token-file to listen there")
    return guard


def _mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f"--socket-mode: {text!r} is not an octal mode such as 0660") from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"--socket-mode: {text!r} is not a permission mode")
    return mode


def _tcp_host(listen: str) -> str | None:
    kind, _, rest = listen.partition(":")
    return rest.rpartition(":")[0] or None if kind == "tcp" else None


def _http_host(http: str | None) -> str | None:
    return http.rpartition(":")[0] or None if http else None
