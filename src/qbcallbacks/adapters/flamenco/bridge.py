"""From Flamenco's MQTT topics to the engine: every change once, in order, nothing fatal.

The subscription is a persistent MQTT session (a fixed client id, `clean_session` false, QoS 1),
so the broker keeps what is published while the adapter is down. One thread does all the work,
one item at a time: an MQTT message is applied to the stored state (raising events only for
real changes), the events are handed on, and only then is the message acknowledged (manual
PUBACK). At start and after every (re)subscription the adapter reconciles with the Manager's
REST API, which raises what the broker never got. A message that cannot be read is logged,
acknowledged and kept in the state's dead letters; so is one that was attempted three times
without finishing (it killed the adapter each time).

paho-mqtt (Eclipse, 2.x) is the client: the reference MQTT implementation for Python, with
persistent sessions and the `manual_ack` that lets a message be acknowledged once it is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ...dispatch.dispatcher import BackPressureError
from ...errors import QbCallbacksError
from ...model.supervisor import HostError
from ..client import ServiceBusy, ServiceGone
from .api import ManagerAPI
from .messages import TASK_BORN, JobUpdate, PayloadError, TaskUpdate, read_update
from .reconcile import BASELINE, apply_job_update, apply_task_update, reconcile
from .sinks import EventRefused, ServiceSink, Sink
from .state import AdapterState

__all__ = ["AdapterError", "Broker", "EventRefused", "FlamencoBridge", "ServiceSink",
           "check_prefix", "parse_broker"]

log = logging.getLogger("qbcallbacks.adapters.flamenco")

#: Attempts at one message before it is taken for a poison and kept aside.
MAX_ATTEMPTS = 3

#: Seconds a reconciliation waits for a pause in the messages before it goes first.
MAX_OWED = 5.0

#: The inbox's word for "reconcile now" (after a subscription).
_RECONCILE = "reconcile"


class AdapterError(QbCallbacksError):
    """The adapter cannot start (a bad broker URL or prefix, ...)."""


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


def check_prefix(prefix: str) -> str:
    """The topic prefix as the Manager uses it: concatenated as written, so kept as given;
    MQTT wildcards and NUL cannot be part of a topic."""
    if any(c in prefix for c in "+#\0"):
        raise AdapterError(f"--prefix {prefix!r}: a topic cannot hold '+', '#' or NUL")
    return prefix


class FlamencoBridge:
    """Subscribes to `PREFIX/jobs` and `PREFIX/jobs/+` and hands the changes they announce
    (and those reconciliation finds) to `sink`, one at a time, in order."""

    def __init__(self, broker: Broker, sink: Sink, state: AdapterState, api: ManagerAPI, *,
                 prefix: str = "flamenco", client_id: str = "qbcallbacks-flamenco",
                 retry_max: float = 5.0, reconcile_every: float = 300.0,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.broker = broker
        self.sink = sink
        self.state = state
        self.api = api
        self.prefix = check_prefix(prefix)
        self.retry_max = retry_max
        #: Seconds between reconciliations when nothing asked for one: the bound on how late
        #: a change the Manager's forwarder dropped is raised.
        self.reconcile_every = reconcile_every
        self.on_ready = on_ready
        self.refused = 0
        self.delivered = 0
        self.dead = 0
        #: Reconciliations done since this bridge started.
        self.reconciliations = 0
        self._owe_reconcile = False
        self._inbox: queue.SimpleQueue[mqtt.MQTTMessage | str | None] = queue.SimpleQueue()
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
        # What was published while the subscription did not exist is read back from the API.
        self._inbox.put(_RECONCILE)
        if self.on_ready is not None:
            self.on_ready()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage,
                    ) -> None:
        self._inbox.put(message)

    def run(self) -> None:
        """Work until `stop()`; messages not yet handed on stay with the broker."""
        if not self._start():
            return
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        try:
            self._loop()
        finally:
            self._client.disconnect()
            self._client.loop_stop()

    def _start(self) -> bool:
        """Hand on what a previous run owed; on a first start, take the Manager's jobs as
        they are before subscribing (waiting for the Manager). False once stopping."""
        if not self._retry(self._flush):
            return False
        if self.state.flag(BASELINE):
            return True
        return self._retry(lambda: reconcile(self.api, self.state)) and self._retry(self._flush)

    def _loop(self) -> None:
        pause, retry_at, owed_since = 0.5, 0.0, 0.0
        periodic_at = time.monotonic() + self.reconcile_every
        while not self._stop.is_set():
            now = time.monotonic()
            owed_since = (owed_since or now) if self._owe_reconcile else 0.0
            wake = max(retry_at, now) if self._owe_reconcile else periodic_at
            try:
                item = self._inbox.get(timeout=max(0.0, wake - now))
            except queue.Empty:
                item = ""
            if item is None or self._stop.is_set():
                break
            if item == _RECONCILE or time.monotonic() >= periodic_at:
                self._owe_reconcile = True
            if isinstance(item, mqtt.MQTTMessage) and self._handle(item):
                self._client.ack(item.mid, item.qos)
            # Between messages; under a steady stream, at the latest after MAX_OWED seconds.
            waited = time.monotonic() - (owed_since or time.monotonic())
            if (self._owe_reconcile and (self._inbox.empty() or waited > MAX_OWED)
                    and time.monotonic() >= retry_at):
                pause = 0.5 if self._reconcile() else min(pause * 2, self.retry_max)
                retry_at = time.monotonic() + pause
                if not self._owe_reconcile:
                    periodic_at = time.monotonic() + self.reconcile_every

    def _reconcile(self) -> bool:
        try:
            reconcile(self.api, self.state)
        except (QbCallbacksError, OSError) as exc:
            log.warning("cannot reconcile with the Manager yet: %s", exc)
            return False
        except Exception:  # a fault of the adapter: logged, tried again later
            log.exception("reconciling with the Manager failed")
            return False
        self._owe_reconcile = False
        self.reconciliations += 1
        return self._retry(self._flush)

    def reconcile_soon(self) -> None:
        """Ask for a reconciliation once the messages already received are handled."""
        self._inbox.put(_RECONCILE)

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
        """Apply one message and hand its events on; True once it may be acknowledged
        (False: stopping, the broker keeps it)."""
        try:
            topic = message.topic
        except UnicodeDecodeError:
            return True  # not a topic of ours: brokers refuse topics that are not UTF-8
        kind = self._kind(topic)
        if kind is None:
            return True
        payload = bytes(message.payload)
        key = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
        tries: list[int] = []
        if not self._retry(lambda: tries.append(self.state.attempt(key))):
            return False
        if tries[0] > MAX_ATTEMPTS:
            return self._keep_aside(key, topic, payload,
                                    f"attempted {tries[0] - 1} times without finishing")
        try:
            update = read_update(kind, payload)
        except PayloadError as exc:
            return self._keep_aside(key, topic, payload, str(exc))
        try:
            done = self._retry(lambda: self._apply(update)) and self._retry(self._flush)
        except Exception as exc:  # a fault of one message must not stop what follows
            log.exception("applying a message on %s failed", topic)
            return self._keep_aside(key, topic, payload, f"adapter fault: {exc!r}"[:300])
        if not done:
            # Stopping is not a failure of this message: it does not count as an attempt.
            with contextlib.suppress(QbCallbacksError):
                self.state.settled(key)
            return False
        return self._retry(lambda: self.state.settled(key))

    def _keep_aside(self, key: str, topic: str, payload: bytes, reason: str) -> bool:
        """Log a message, keep it in the dead letters, forget its attempts; nothing it
        announced is lost for good, since the next reconciliation reads the Manager."""
        self.dead += 1
        log.warning("kept aside a message on %s: %s", topic, reason)
        self._owe_reconcile = True
        return self._retry(lambda: self.state.dead_letter(topic, payload, reason, digest=key))

    def _apply(self, update: Any) -> None:
        if self._missed(update):
            self._owe_reconcile = True
        if not isinstance(update, JobUpdate):
            apply_task_update(self.state, update)
            return
        tasks = None
        if update.refresh_tasks and not update.was_deleted:
            try:
                tasks = self.api.tasks(update.id)
            except HostError as exc:
                log.warning("cannot read the tasks of job %s yet: %s", update.id, exc)
                self._owe_reconcile = True
        apply_job_update(self.state, update, tasks)

    def _missed(self, update: JobUpdate | TaskUpdate) -> bool:
        """Whether the message shows a change that never arrived: a transition from another
        status than the one known, or a task of a job never seen."""
        if isinstance(update, JobUpdate):
            known = self.state.job_status(update.id)
            return (update.previous_status is not None and known is not None
                    and update.previous_status != known)
        if self.state.job_number(update.job_id) is None:
            return True
        known = self.state.task_status(update.id) or TASK_BORN
        return update.previous_status is not None and update.previous_status != known

    def _flush(self) -> None:
        """Hand on every event owed, in order; each marked once taken."""
        for seq, line in self.state.owed():
            try:
                self.sink.deliver(seq, line)
                self.delivered += 1
            except EventRefused as exc:
                self.refused += 1
                log.warning("the engine refused event %d (%s); skipped", seq, exc)
            self.state.delivered(seq)

    def _retry(self, what: Callable[[], object]) -> bool:
        """Run `what()`, retried with backoff while it fails for a passing cause; False once
        stopping."""
        pause = 0.05
        while True:
            try:
                what()
                return True
            except (ServiceGone, ServiceBusy, BackPressureError, QbCallbacksError,
                    OSError) as exc:
                log.warning("waiting to go on: %s", exc)
            if self._stop.wait(pause):
                return False
            pause = min(pause * 2, self.retry_max)
