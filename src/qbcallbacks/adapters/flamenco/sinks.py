"""Where the adapter's events go: a running `qbcallbacks serve` (its line protocol) or an
in-process dispatcher (`--direct`). Either `deliver` returns once the event is durably taken."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ...dispatch.dispatcher import Dispatcher, DispatcherClosed
from ...errors import QbCallbacksError
from ...model.supervisor import Supervisor
from ...stream import BadLine, read_events
from ..client import ServiceClient, ServiceGone, ServiceRefused
from .state import AdapterState


class EventRefused(QbCallbacksError):
    """The engine refused an event for good; it is counted and not sent again."""


class Sink(Protocol):
    """Where events go; `deliver` returns once the event is durably taken, raises
    `EventRefused` for an event never to be sent again, anything else to be retried."""

    def deliver(self, seq: int, line: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def open_service(address: str, supervisor: Supervisor, state: AdapterState, *,
                 producer: str, token: str | None) -> ServiceClient:
    """A new connection to the service, as the supervisor of `producer` (epoch 0: the
    state database's counter only grows), this adapter's numbering raised above what the
    service holds for it (a fresh state database must not reuse its `seq`). The one place
    that knows how the adapter introduces itself to the service."""
    client = ServiceClient(address, supervisor, producer=producer, token=token)
    state.raise_seq(client.last_seq)
    return client


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
        """The open connection, made if needed."""
        if self._client is None or not self._client.alive:
            if self._client is not None:
                self._client.close()
            self._client = open_service(self.address, self.supervisor, self.state,
                                        producer=self.producer, token=self.token)
        return self._client

    def deliver(self, seq: int, line: dict[str, Any]) -> None:
        # A refused hello (a bad token, a second supervisor) is not a refused event: it
        # propagates and the event is tried again later, never skipped.
        client = self.connect()
        try:
            client.event({**line, "seq": seq})
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
