"""Running a recorded event stream for real: the execution mode of `qbcallbacks replay`.

The stream drives the reference supervisor's state (`SqliteSupervisor.apply`) and every event
goes through the dispatcher with real callback runs. Callbacks' actions change that state but
raise no new events: a replay runs exactly the stream it was given, so its firings are the ones
`replay --dry-run` predicts, and the audit trail is checked against that prediction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from ..engine.audit import AuditStore
from ..engine.dispatcher import BackPressureError, Dispatcher, DispatcherConfig
from ..engine.events import Event, Job
from ..engine.mail import MboxTransport
from ..engine.sqlite_host import SqliteSupervisor
from ..engine.verify import verify_session
from ._summary import print_summary, progress_bar
from .simulate import DEFAULT_WORKDIR, working_directory


def execute_stream(directories: Sequence[str], stream: Iterable[tuple[Event, Job | None]], *,
                   timeout: float = 30.0, audit_path: str | None = None,
                   log_dir: str | None = None, mode: str = "isolated",
                   workdir: str = DEFAULT_WORKDIR, progress: bool = True,
                   console: Console | None = None, total: int | None = None) -> int:
    """Dispatch every event of `stream` with real runs; 0 if every predicted firing ran to an
    end, 1 otherwise. Paths are resolved before the callbacks' directory is entered."""
    console = console or Console(highlight=False)
    dirs = [str(Path(d).resolve()) for d in directories]
    run_dir = Path(workdir).resolve()
    audit_file = Path(audit_path).resolve() if audit_path else run_dir / "audit.db"
    logs = Path(log_dir).resolve() if log_dir else run_dir / "logs"
    farm_db = run_dir / "replay.db"
    for stale in (farm_db, farm_db.with_name("replay.db-wal"),
                  farm_db.with_name("replay.db-shm")):
        stale.unlink(missing_ok=True)

    def show(directory: str, diagnostics: Sequence[Any]) -> None:
        for d in diagnostics:
            console.print(d.render(), markup=False)

    started = time.perf_counter()
    with working_directory(run_dir):
        supervisor = SqliteSupervisor(farm_db, mail=MboxTransport(run_dir / "mail.mbox"))
        audit = AuditStore(audit_file)
        dispatcher = Dispatcher(dirs, supervisor, mode=mode,  # type: ignore[arg-type]
                                config=DispatcherConfig(timeout=timeout, log_dir=str(logs)),
                                audit=audit, on_diagnostics=show)
        try:
            if progress:
                with progress_bar(console, "events") as (_, update):
                    _feed(dispatcher, supervisor, stream, update, total)
            else:
                _feed(dispatcher, supervisor, stream, None, total)
        finally:
            dispatcher.close(timeout=max(60.0, timeout))
            supervisor.close()
        verification = verify_session(audit, dispatcher.session, dispatcher.rules)
        print_summary(console, audit, dispatcher.session, verification,
                      elapsed=time.perf_counter() - started, audit_path=audit_file, log_dir=logs,
                      run_dir=run_dir)
        audit.close()
    return 0 if verification.ok else 1


def _feed(dispatcher: Dispatcher, supervisor: SqliteSupervisor,
          stream: Iterable[tuple[Event, Job | None]], update: Any, total: int | None) -> None:
    n = 0
    for event, job in stream:
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
