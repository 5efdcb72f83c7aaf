"""Putting a service together: the audit trail, the proxy supervisor, the dispatcher, the
listeners; and taking it apart in order on a drain or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

from ..audit.backends import store_class
from ..audit.store import AuditError
from ..dispatch.dispatcher import Dispatcher, DispatcherSettings
from ..dispatch.reload import DiagnosticsHandler
from .core import Service
from .http import HttpServer
from .metrics import MeteredAuditStore, Metrics
from .proxy import SupervisorProxy
from .server import ListenError, SocketServer

__all__ = ["ListenError", "Running", "ServiceOptions", "catch_stop_signals", "open_service",
           "serve_until_stopped"]


@dataclass(frozen=True)
class ServiceOptions:
    """What `qbcallbacks serve` is told."""

    directories: Sequence[str]
    listen: str
    #: The audit database: a path (or a URL, for a store that takes one).
    audit: Path | str
    log_dir: str | None = None
    http: str | None = None
    timeout: float = 30.0
    mode: Literal["isolated", "in-process"] = "isolated"
    allow_job_code: bool = False
    #: Seconds a drain may take before what is left is cancelled (None: no limit).
    drain_timeout: float | None = None
    settings: dict[str, object] = field(default_factory=dict)


@dataclass
class Running:
    """A started service and its listeners."""

    service: Service
    sockets: SocketServer
    http: HttpServer | None

    def stop(self) -> bool:
        """Drain (once), then close the listeners; True when everything accepted ran."""
        drained = self.service.drain(self.service.drain_timeout)
        self.sockets.close()
        if self.http is not None:
            self.http.close()
        return drained


@contextlib.contextmanager
def open_service(options: ServiceOptions, on_diagnostics: DiagnosticsHandler | None = None,
                 stopped: threading.Event | None = None) -> Iterator[Running]:
    """A listening service; drained and closed on the way out. `stopped` (from
    `catch_stop_signals`) lets a signal that comes while it starts stop it too."""
    metrics = Metrics()
    proxy = SupervisorProxy(options.timeout, observe=metrics.call)
    settings = DispatcherSettings(timeout=options.timeout, log_dir=options.log_dir,
                                  allow_job_code=options.allow_job_code,
                                  **options.settings)
    try:
        # The metered trail on whichever backend the location names (SQLite or PostgreSQL).
        base = store_class(options.audit)
        cls = type("MeteredStore", (MeteredAuditStore, base), {})
        store = cls(options.audit, busy_timeout=settings.busy_timeout,
                    synchronous=settings.synchronous)
    except AuditError as exc:
        raise ListenError(str(exc)) from None
    store.metrics = metrics
    dispatcher = Dispatcher(list(options.directories), proxy, mode=options.mode,
                            settings=settings, audit=store, on_diagnostics=on_diagnostics)
    service = Service(dispatcher, proxy, metrics, drain_timeout=options.drain_timeout,
                      stopped=stopped)
    sockets: SocketServer | None = None
    http: HttpServer | None = None
    try:
        sockets = SocketServer(options.listen, service)
        if options.http:
            http = HttpServer(options.http, service)
        sockets.start()
        if http is not None:
            http.start()
        running = Running(service, sockets, http)
        yield running
    finally:
        service.drain(options.drain_timeout)
        if sockets is not None:
            sockets.close()
        if http is not None:
            http.close()
        with contextlib.suppress(AuditError):
            store.close()


def catch_stop_signals(stop: threading.Event | None = None) -> threading.Event:
    """From now on SIGTERM and SIGINT set `stop` (a new event if none) instead of ending the
    process: called before the service starts, a signal sent at any moment drains it."""
    stop = stop if stop is not None else threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    return stop


def serve_until_stopped(running: Running, announce: Callable[[], None] | None = None) -> bool:
    """Serve until SIGTERM, SIGINT or a `drain` request; then drain and stop. `announce` is
    called once the signals are caught: a SIGTERM sent as soon as it is seen drains too."""
    stop = catch_stop_signals(running.service.stopped)
    if announce is not None:
        announce()
    while not stop.wait(0.5):
        pass
    return running.stop()
