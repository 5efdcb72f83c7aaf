"""Running a recorded event stream for real: the execution mode of `qbcallbacks replay`.

The stream drives the reference supervisor's state (`SqliteSupervisor.apply`) and every event
goes through the dispatcher with real callback runs. Callbacks' actions change that state but
raise no new events, and the dispatcher raises no time events of its own: the stream carries
them and drives the clock (`StreamClock`), so a replay runs exactly the stream it was given, its
firings are the ones `replay --dry-run` predicts, and the audit trail is checked against that
prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console

from ..dispatch.dispatcher import BackPressureError, Dispatcher
from ..matching.clock import StreamClock
from ..model.events import Event, Job
from ..reference.sqlite import SqliteSupervisor
from ._session import DEFAULT_WORKDIR, finish_session, run_session
from ._summary import progress_bar


def execute_stream(directories: Sequence[str], stream: Iterable[tuple[Event, Job | None]], *,
                   timeout: float = 30.0, audit_path: str | None = None,
                   log_dir: str | None = None, mode: str = "isolated",
                   workdir: str = DEFAULT_WORKDIR, progress: bool = True,
                   console: Console | None = None, total: int | None = None,
                   fmt: str = "text", allow_failures: bool = True) -> int:
    """Dispatch every event of `stream` with real runs; 0 if every predicted firing ran to an
    end (and, unless `allow_failures`, none failed), 1 otherwise."""
    console = console or Console(highlight=False)
    clock = StreamClock()
    with run_session(directories, db_name="replay.db", timeout=timeout, audit_path=audit_path,
                     log_dir=log_dir, mode=mode, workdir=workdir, console=console,
                     clock=clock, time_events="stream") as session:
        if progress and fmt == "text":
            with progress_bar("events", verb="replaying") as update:
                _feed(session.dispatcher, session.supervisor, stream, update, total, clock)
        else:
            _feed(session.dispatcher, session.supervisor, stream, None, total, clock)
    return 0 if finish_session(session, fmt=fmt, allow_failures=allow_failures) else 1


def _feed(dispatcher: Dispatcher, supervisor: SqliteSupervisor,
          stream: Iterable[tuple[Event, Job | None]], update: Any, total: int | None,
          clock: StreamClock) -> None:
    n = 0
    for event, job in stream:
        clock.observe(event)
        supervisor.apply(event, job)
        while True:
            try:
                dispatcher.emit(event, job)
                break
            except BackPressureError:
                continue  # a replay has time: wait for room rather than give up
        n += 1
        if update is not None and n % 50 == 0:
            update(n, total or n)
    dispatcher.wait_idle()
    if update is not None:
        update(n, total or n)
