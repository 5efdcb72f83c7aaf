"""From Flamenco's MQTT topics to the engine, at least once and in order.

The subscription is a persistent MQTT session (a fixed client id, `clean_session` false, QoS 1),
so the broker keeps what is published while the adapter is down. Each message is acknowledged
to the broker (manual PUBACK) only after its events were taken: acked by the service (in its
journal) or accepted by an in-process dispatcher (in its journal). A crash before that makes
the broker deliver the message again; its stored translation gives the same events with the
same `seq`, which the service acknowledges without firing twice.

paho-mqtt (Eclipse, 2.x) is the client: it is the reference MQTT implementation for Python,
kept by the Eclipse Foundation, speaks 3.1.1 and 5 with persistent sessions, and its 2.x
`manual_ack` is what lets a message be acknowledged only once it is safe.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ...dispatch.dispatcher import BackPressureError, Dispatcher, DispatcherClosed
from ...errors import QbCallbacksError
from ...model.supervisor import Supervisor
from ...stream import BadLine, read_events
from ..client import ServiceBusy, ServiceClient, ServiceGone, ServiceRefused
from .messages import PayloadError, read_update
from .state import AdapterState, Translation

log = logging.getLogger("qbcallbacks.adapters.flamenco")


class AdapterError(QbCallbacksError):
    """The adapter cannot start (a bad broker URL, ...)."""


class EventRefused(QbCallbacksError):
    """The engine refused an event for good; the message is acknowledged and skipped."""


class Sink(Protocol):
    """Where events go; `deliver` returns once the event is durably taken, raises
    `EventRefused` for an event never to be sent again, anything else to be retried."""

    def deliver(self, seq: int, line: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class ServiceSink:
    """Feeds `qbcallbacks serve` through its line protocol, answering its calls with
    `supervisor`; reconnects as needed."""

    def __init__(self, address: str, supervisor: Supervisor, state: AdapterState,
                 producer: str = "flamenco", token: str | None = None) -> None:
        self.address = address
        self.supervisor = supervisor
        self.state = state
        self.producer = producer
        self.token = token
        self._client: ServiceClient | None = None

    def connect(self) -> ServiceClient:
        """The open connection, made (and numbering raised above the service's) if needed."""
        if self._client is None or not self._client.alive:
            if self._client is not None:
                self._client.close()
            self._client = ServiceClient(self.address, self.supervisor, producer=self.producer,
                                         token=self.token)
            # A fresh adapter state must not reuse numbers the service already holds.
            self.state.raise_seq(self._client.last_seq)
        return self._client

    def deliver(self, seq: int, line: dict[str, Any]) -> None:
        try:
            self.connect().event({**line, "seq": seq})
        except ServiceRefused as exc:
            raise EventRefused(str(exc)) from None
        except ServiceGone:
            if self._client is not None:
                self._client.close()
                self._client = None
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class DirectSink:
    """Feeds an in-process dispatcher (`--direct`)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def deliver(self, seq: int, line: dict[str, Any]) -> None:
        (step,) = list(read_events([json.dumps(line)]))
        if isinstance(step, BadLine):
            raise EventRefused(step.message)
        try:
            self.dispatcher.emit(step.event, step.job)
        except DispatcherClosed as exc:
            raise EventRefused(str(exc)) from None

    def close(self) -> None:
        self.dispatcher.close()


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_broker(url: str) -> Broker:
    """`mqtt://[user:password@]host[:port]` (1883) or `mqtts://...` (8883, TLS)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise AdapterError(f"--mqtt {url!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise AdapterError(f"--mqtt {url!r}: the port is not a number") from None
    return Broker(parts.hostname, port, tls, parts.username, parts.password)


class FlamencoBridge:
    """Subscribes to `prefix/jobs` and `prefix/jobs/+` and hands each message's events to
    `sink`, one message at a time, in arrival order."""

    def __init__(self, broker: Broker, sink: Sink, state: AdapterState, *,
                 prefix: str = "flamenco", client_id: str = "qbcallbacks-flamenco",
                 retry_max: float = 5.0, on_ready: Callable[[], None] | None = None) -> None:
        self.broker = broker
        self.sink = sink
        self.state = state
        self.prefix = prefix.strip("/")
        self.retry_max = retry_max
        self.on_ready = on_ready
        self.refused = 0
        self.delivered = 0
        self._inbox: queue.SimpleQueue[mqtt.MQTTMessage | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   clean_session=False, protocol=mqtt.MQTTv311,
                                   manual_ack=True)
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set()
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    @property
    def topics(self) -> tuple[str, str]:
        return f"{self.prefix}/jobs", f"{self.prefix}/jobs/+"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("the broker refused the connection: %s", reason)
            return
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if self.on_ready is not None:
            self.on_ready()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage,
                    ) -> None:
        self._inbox.put(message)

    def run(self) -> None:
        """Connect and work until `stop()`; messages not yet handed on stay with the broker."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        try:
            while True:
                message = self._inbox.get()
                if message is None or self._stop.is_set():
                    break
                if self._handle(message):
                    self._client.ack(message.mid, message.qos)
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)

    def _kind(self, topic: str) -> str | None:
        if topic == f"{self.prefix}/jobs":
            return "job"
        head, _, uuid = topic.rpartition("/")
        if head == f"{self.prefix}/jobs" and uuid:
            return "task"
        return None

    def _handle(self, message: mqtt.MQTTMessage) -> bool:
        """Hand one message on; True once it may be acknowledged (False: stopping)."""
        kind = self._kind(message.topic)
        if kind is None:
            return True
        payload = bytes(message.payload)
        try:
            update = read_update(kind, payload)
        except PayloadError as exc:
            self.refused += 1
            log.warning("skipped a message on %s: %s", message.topic, exc)
            return True
        found: list[Translation] = []
        if not self._retry(lambda: found.append(
                self.state.translate(message.topic, payload, update))):
            return False
        translation = found[0]
        if translation.delivered:
            return True
        for offset, line in enumerate(translation.lines):
            seq = translation.first_seq + offset
            if not self._retry(lambda s=seq, ln=line: self._deliver(s, ln)):  # type: ignore[misc]
                return False
        return self._retry(lambda: self.state.delivered(translation.digest))

    def _deliver(self, seq: int, line: dict[str, Any]) -> None:
        try:
            self.sink.deliver(seq, line)
            self.delivered += 1
        except EventRefused as exc:
            self.refused += 1
            log.warning("the engine refused event %d (%s); skipped", seq, exc)

    def _retry(self, what: Callable[[], object]) -> bool:
        """Run `what()`, retried with backoff while it fails for a passing cause; False once
        stopping (the message then stays unacknowledged with the broker)."""
        pause = 0.05
        while True:
            try:
                what()
                return True
            except (ServiceGone, ServiceBusy, BackPressureError, QbCallbacksError,
                    OSError) as exc:
                log.warning("waiting to hand events on: %s", exc)
            if self._stop.wait(pause):
                return False
            pause = min(pause * 2, self.retry_max)
