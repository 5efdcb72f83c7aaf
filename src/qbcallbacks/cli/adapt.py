"""`qbcallbacks adapt flamenco`: carry a Flamenco Manager's job and task updates from its MQTT
broker into the callback service (`--service`), or into an in-process dispatcher (`--direct`),
and callbacks' actions back to the Manager's REST API.

Runs until SIGTERM or SIGINT, then stops taking messages (what the broker still holds is
delivered at the next start) and exits 0; 2 on a usage or environment error.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from ._targets import SetupError

if TYPE_CHECKING:
    from ..adapters.flamenco.sinks import DirectSink
    from ..adapters.flamenco.state import AdapterState
    from ..model.supervisor import Supervisor


@click.group("adapt")
def command() -> None:
    """Bridge another farm manager's events to the callbacks (see `adapt flamenco --help`)."""


@command.command("flamenco")
@click.option("--mqtt", "mqtt_url", default=None, metavar="URL",
              help="The broker Flamenco publishes to: mqtt://[USER:PASS@]HOST[:PORT] or mqtts://.")
@click.option("--prefix", default="flamenco", show_default=True,
              help="Flamenco's topic prefix (mqtt.client.topic_prefix), used as written: "
                   "the topics are PREFIX/jobs and PREFIX/jobs/+.")
@click.option("--client-id", default="qbcallbacks-flamenco", show_default=True,
              help="MQTT client id of the persistent session (keep it fixed).")
@click.option("--manager", default="http://localhost:8080", show_default=True, metavar="URL",
              help="Flamenco Manager's base URL, for jobinfo and actions.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              default="qbcallbacks-flamenco.db", show_default=True,
              help="The adapter's database: what it knows of each job and task, the events "
                   "it owes, the messages it kept aside.")
@click.option("--service", metavar="unix:SOCKET|tcp:HOST:PORT", default=None,
              help="Feed a running `qbcallbacks serve`.")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The token of a --service that asks for one (its --token-file).")
@click.option("--direct", "direct", multiple=True, metavar="PATH",
              help="Run the callbacks of PATH in this process instead (with --audit).")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False), default=None,
              help="Audit database of --direct.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Default seconds one callback run may take (--direct).")
@click.option("--mode", type=click.Choice(["isolated", "in-process"]), default="isolated",
              show_default=True, help="How Python callbacks run (--direct).")
@click.option("--reconcile-every", type=click.FloatRange(min=0.1), default=300.0,
              show_default=True, metavar="SECONDS",
              help="Read every job from the Manager at least this often, to raise changes "
                   "its MQTT forwarder dropped.")
@click.option("--dead-letters", "show_dead", is_flag=True,
              help="Print the messages kept aside in --state (JSON lines) and exit.")
@click.option("--producer", default="flamenco", show_default=True,
              help="The producer name this adapter gives the service (--service).")
def flamenco(mqtt_url: str | None, prefix: str, client_id: str, manager: str,
             state_path: str, service: str | None, token_file: str | None,
             direct: tuple[str, ...], audit_path: str | None, timeout: float, mode: str,
             reconcile_every: float, show_dead: bool, producer: str) -> None:
    """Subscribe to Flamenco's job and task updates and raise the matching events.

    Job status changes become job events, task status changes work events (the table is in
    spec/flamenco.md); each Flamenco job gets a job number that never changes. Give either
    --service or --direct PATH with --audit. Messages that cannot be read are kept aside in
    the state database: --dead-letters prints them.
    """
    from ..adapters.flamenco.api import ManagerAPI
    from ..adapters.flamenco.bridge import AdapterError, FlamencoBridge, check_prefix, parse_broker
    from ..adapters.flamenco.rest import FlamencoSupervisor
    from ..adapters.flamenco.sinks import ServiceSink, Sink
    from ..adapters.flamenco.state import AdapterState

    if show_dead:
        if not Path(state_path).is_file():
            raise click.UsageError(f"--state {state_path!r}: no such adapter state")
        _print_dead_letters(AdapterState(state_path))
        return
    _check_choices(producer, service, direct, audit_path)
    try:
        if mqtt_url is None:
            raise click.UsageError("Missing option '--mqtt'.")
        broker = parse_broker(mqtt_url)
        check_prefix(prefix)
    except AdapterError as exc:
        raise click.UsageError(str(exc)) from None
    state = AdapterState(state_path)
    api = ManagerAPI(manager)
    supervisor = FlamencoSupervisor(api, state)
    sink: Sink = (ServiceSink(service, supervisor, state, producer=producer,
                              token=_token(token_file)) if service else
                  _direct_sink(direct, supervisor, audit_path or "", timeout, mode))

    def ready() -> None:
        click.echo(f"qbcallbacks adapt: subscribed to {', '.join(bridge.topics)} on "
                   f"{broker.host}:{broker.port}", err=True)

    bridge = FlamencoBridge(broker, sink, state, api, prefix=prefix, client_id=client_id,
                            reconcile_every=reconcile_every, on_ready=ready)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    try:
        bridge.run()
    finally:
        sink.close()
        api.close()
        state.close()
    click.echo(f"qbcallbacks adapt: stopped after {bridge.delivered} event(s), "
               f"{bridge.refused} skipped, {bridge.dead} kept aside", err=True)
    sys.stdout.flush()


def _check_choices(producer: str, service: str | None, direct: tuple[str, ...],
                   audit_path: str | None) -> None:
    if not 1 <= len(producer) <= 200 or not producer.isprintable():
        raise click.UsageError(f"--producer {producer!r}: 1 to 200 printable characters")
    if bool(service) == bool(direct):
        raise click.UsageError("give either --service ADDRESS or --direct PATH (with --audit)")
    if direct and not audit_path:
        raise click.UsageError("--direct needs --audit DB")


def _print_dead_letters(state: AdapterState) -> None:
    """One JSON object a line: when, topic, why, and the payload (as text when it is UTF-8,
    else in base64)."""
    try:
        for letter in state.dead_letters():
            try:
                payload = {"payload": letter.payload.decode("utf-8")}
            except UnicodeDecodeError:
                payload = {"payload_base64": base64.b64encode(letter.payload).decode()}
            click.echo(json.dumps({"id": letter.id, "at": letter.at, "topic": letter.topic,
                                   "reason": letter.reason, **payload}))
    finally:
        state.close()


def _direct_sink(paths: tuple[str, ...], supervisor: Supervisor, audit_path: str,
                 timeout: float, mode: str) -> DirectSink:
    from ..adapters.flamenco.sinks import DirectSink
    from ..audit.backends import is_url, open_audit
    from ..audit.store import AuditError
    from ..dispatch.dispatcher import Dispatcher, DispatcherSettings
    from ._session import callback_dirs

    dirs = callback_dirs(paths, None)
    try:
        audit = open_audit(audit_path if is_url(audit_path) else Path(audit_path).resolve())
    except AuditError as exc:
        raise SetupError(str(exc)) from None
    dispatcher = Dispatcher(dirs, supervisor, mode=mode,  # type: ignore[arg-type]
                            settings=DispatcherSettings(timeout=timeout), audit=audit)
    return DirectSink(dispatcher)


def _token(token_file: str | None) -> str | None:
    """The service's token, read from `--token-file`."""
    if not token_file:
        return None
    from ..service.access import TokenError, read_token

    try:
        return read_token(token_file)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None
