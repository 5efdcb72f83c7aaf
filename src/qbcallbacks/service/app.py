"""Putting a service together: the audit trail, the proxy supervisor, the dispatcher, the
listeners; and taking it apart in order on a drain or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

from ..audit.backends import journal_dir, store_class
from ..audit.journal import Position, release_tails
from ..audit.sqlite import SqliteAuditStore
from ..audit.store import AuditError
from ..dispatch.dispatcher import Dispatcher, DispatcherSettings
from ..dispatch.reload import DiagnosticsHandler
from .core import Service
from .http import HttpServer
from .listen import Guard, ListenError
from .metrics import MeteredAuditStore, Metrics
from .producers import ProducerBook
from .proxy import SupervisorProxy
from .server import SocketServer

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
    #: Take global callbacks (the `global` method); qb.conf `supervisor_global_callbacks`.
    allow_global_callbacks: bool = False
    #: Seconds a drain may take before what is left is cancelled (None: no limit).
    drain_timeout: float | None = None
    settings: dict[str, object] = field(default_factory=dict)
    #: Tokens, connection caps, the socket's mode and group.
    guard: Guard = field(default_factory=Guard)
    #: Reload the callback directories when their files change.
    watch: bool = False
    #: The mode of the trail, its WAL and the journal, whatever the umask (None: the umask's).
    file_mode: int | None = None


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
                                  allow_global_callbacks=options.allow_global_callbacks,
                                  **options.settings)
    store = _open_store(options, settings)
    store.metrics = metrics
    try:
        checkpoint = store.load_producers()
    except AuditError as exc:
        store.close()
        raise ListenError(str(exc)) from None
    # The journal keeps what the checkpoint does not cover yet, whatever is matched.
    store.journal_keep_from = checkpoint.position or Position(0, 0)  # type: ignore[attr-defined]
    dispatcher = Dispatcher(list(options.directories), proxy, mode=options.mode,
                            settings=settings, audit=store, on_diagnostics=on_diagnostics,
                            watch=options.watch)
    book = ProducerBook()
    book.restore(checkpoint.rows)
    replayed_to = book.replay(dispatcher.journal.read_from(
        checkpoint.position or Position(0, 0)))
    service = Service(dispatcher, proxy, metrics, drain_timeout=options.drain_timeout,
                      stopped=stopped, book=book, replayed_to=replayed_to)
    sockets: SocketServer | None = None
    http: HttpServer | None = None
    try:
        sockets = SocketServer(options.listen, service, options.guard)
        if options.http:
            http = HttpServer(options.http, service, options.guard)
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


def _open_store(options: ServiceOptions, settings: DispatcherSettings) -> MeteredAuditStore:
    """The metered trail on whichever backend the location names (SQLite or PostgreSQL)."""
    try:
        base = store_class(options.audit)
        cls = type("MeteredStore", (MeteredAuditStore, base), {})
        if base is SqliteAuditStore and options.file_mode is not None:
            own_files(Path(options.audit), options.file_mode)
        store: MeteredAuditStore = cls(options.audit, busy_timeout=settings.busy_timeout,
                                       synchronous=settings.synchronous)
    except (AuditError, OSError) as exc:
        raise ListenError(str(exc)) from None
    store.file_mode = options.file_mode  # type: ignore[attr-defined]  # its journal's
    directory = journal_dir(store)
    if directory is not None:  # this process writes the trail now: its journal's spare room
        release_tails(directory)
    return store


def own_files(db: Path, mode: int) -> None:
    """The trail (made now if there is none, so it never exists with another mode), its WAL
    and shared memory (SQLite gives them the trail's mode) and the journal's segments: `mode`,
    whatever the umask and whatever they had."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    events = db.with_name(db.name + ".events")
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
                 *(events.glob("*.log") if events.is_dir() else ())):
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(path).st_mode):  # never a FIFO or a link's target
                os.chmod(path, mode)


def catch_stop_signals(stop: threading.Event | None = None) -> threading.Event:
    """From now on SIGTERM and SIGINT set `stop` (a new event if none) instead of ending the
    process: called before the service starts, a signal sent at any moment drains it."""
    stop = stop if stop is not None else threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the service can reload
    return stop


def reload_on_hangup(service: Service) -> threading.Event:
    """SIGHUP reloads every callback directory (off the signal handler: a reload takes
    time); the event is set after each reload, for whoever waits on one."""
    done = threading.Event()

    def reload() -> None:
        try:
            service.reload({})
        except Exception:  # a draining service, a failed reload: the old rules stay
            logging.getLogger("qbcallbacks.service").exception("reload on SIGHUP failed")
        done.set()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=reload, name="qbcallbacks-sighup", daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, on_hangup)
    return done


def serve_until_stopped(running: Running, announce: Callable[[], None] | None = None) -> bool:
    """Serve until SIGTERM, SIGINT or a `drain` request; then drain and stop. `announce` is
    called once the signals are caught: a SIGTERM sent as soon as it is seen drains too."""
    stop = catch_stop_signals(running.service.stopped)
    reload_on_hangup(running.service)
    if announce is not None:
        announce()
    while not stop.wait(0.5):
        pass
    return running.stop()
