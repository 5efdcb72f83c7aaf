"""Running a recorded event stream for real: the execution mode of `qbcallbacks replay`.

The stream drives the reference supervisor's state (`SqliteSupervisor.apply`) and every event
goes through the dispatcher with real callback runs, one event at a time: event N is applied,
what it fired runs to an end, and only then is event N+1 applied, so each callback sees (and
acts on) the state after its own event, as on a farm that paused between events. Callbacks'
actions change that state but raise no new events, and the dispatcher raises no time events
of its own: the stream carries them and drives the clock (`StreamClock`), so a replay runs
exactly the stream it was given, its firings are the ones `replay --dry-run` predicts, and the
audit trail is checked against that prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console

from ..dispatch.dispatcher import BackPressureError, Dispatcher
from ..matching.clock import StreamClock
from ..model.events import Event, Job
from ..reference.sqlite import SqliteSupervisor
from ..stream import ReplayStep
from ._session import DEFAULT_WORKDIR, RunSession, finish_session, run_session
from ._summary import progress_bar

Step = tuple[Event, Job | None] | ReplayStep


def execute_stream(directories: Sequence[str], stream: Iterable[Step], *,
                   timeout: float = 30.0, audit_path: str | None = None,
                   log_dir: str | None = None, mode: str = "isolated",
                   workdir: str = DEFAULT_WORKDIR, progress: bool = True,
                   console: Console | None = None, total: int | None = None,
                   fmt: str = "text", allow_failures: bool = True) -> int:
    """Dispatch every event of `stream` with real runs; 0 if every predicted firing ran to an
    end (and, unless `allow_failures`, none failed), 1 otherwise. A step is a `ReplayStep`
    (only the job keys its line gave are applied) or an (event, job) pair (the whole job)."""
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
    refused = _all_refused(session)
    ok = finish_session(session, fmt=fmt, allow_failures=allow_failures)
    if refused is not None:
        click.echo(f"qbcallbacks replay: {refused}", err=True)
        return 1
    return 0 if ok else 1


def _state_of(step: Step, supervisor: SqliteSupervisor) -> tuple[Event, Job | None]:
    """The event and the job fields its line gives: none for a job named by id, and the
    status only when the line states it, so what earlier callbacks did (an `unblock-self`)
    is not undone by the job as an earlier line described it."""
    if not isinstance(step, ReplayStep):
        return step
    if step.job is None or not step.given:
        return step.event, None
    if "status" not in step.given:
        current = supervisor.job(step.job.id)
        if current is not None:
            return step.event, step.job.model_copy(update={"status": current.status})
    return step.event, step.job


def _all_refused(session: RunSession) -> str | None:
    """Why nothing could run, when every rule was refused at load and nothing ran: a replay
    that shows nothing because the site's callbacks were all refused has failed."""
    dispatcher = session.dispatcher
    if dispatcher.rules:
        return None
    errors = len([d for found in dispatcher.diagnostics.values() for d in found
                  if d.severity == "error"])
    if not errors or any(session.audit.counts(dispatcher.session).values()):
        return None
    return (f"nothing ran: every rule was refused when the callback directories were loaded "
            f"({errors} error(s), shown above)")


def _feed(dispatcher: Dispatcher, supervisor: SqliteSupervisor, stream: Iterable[Step],
          update: Any, total: int | None, clock: StreamClock) -> None:
    n = 0
    for step in stream:
        event, job = _state_of(step, supervisor)
        clock.observe(event)
        supervisor.apply(event, job)
        while True:
            try:
                dispatcher.emit(event, job)
                break
            except BackPressureError:
                continue  # a replay has time: wait for room rather than give up
        dispatcher.wait_idle()  # the runs of this event end before the next event applies
        n += 1
        if update is not None and n % 50 == 0:
            update(n, total or n)
    if update is not None:
        update(n, total or n)
