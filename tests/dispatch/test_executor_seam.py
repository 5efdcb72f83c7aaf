"""The executor seam: a dispatcher runs its firings through any `Executor`, and the recorder
records what that executor reports, with intake and recorder unchanged."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from qbcallbacks.audit.backends import open_journal
from qbcallbacks.audit.records import PendingFiring
from qbcallbacks.audit.sqlite import SqliteAuditStore
from qbcallbacks.audit.store import AuditError
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings, Health
from qbcallbacks.dispatch.executor import Completions, Executor
from qbcallbacks.dispatch.recorder import Recorder
from qbcallbacks.dispatch.state import InFlight, LifeCycle, Stage
from qbcallbacks.model.events import Event
from qbcallbacks.model.supervisor import Supervisor
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import RunResult
from support.dispatch_fakes import write_dir


class QueueExecutor:
    """Keeps submitted firings until `finish_all`, as a remote executor would hold them
    until its results come back; reports through the completions from its own thread."""

    def __init__(self) -> None:
        self.completions: Completions | None = None
        self.submitted: list[PendingFiring] = []
        self.cancelled = False
        self.closed = False
        self.problem: str | None = None
        self.lock = threading.Lock()

    def start(self, completions: Completions, settings: DispatcherSettings,
              supervisor: Supervisor) -> None:
        self.completions = completions
        self.timeout = settings.timeout
        self.supervisor = supervisor

    def submit(self, firing: PendingFiring) -> None:
        with self.lock:
            self.submitted.append(firing)

    def finish_all(self) -> None:
        def report() -> None:
            assert self.completions is not None
            with self.lock:
                taken = list(self.submitted)
            for firing in taken:
                at = time.time()
                if self.completions.started(firing.id, at):
                    self.completions.complete(firing.id, RunResult(
                        status="ok", exit_code=0, output=f"remote {firing.callback}\n",
                        duration=0.5, started_at=at))
        worker = threading.Thread(target=report)
        worker.start()
        worker.join()

    def cancel(self) -> None:
        self.cancelled = True
        assert self.completions is not None
        with self.lock:
            taken, self.submitted = self.submitted, []
        for firing in taken:
            self.completions.complete(firing.id, RunResult(status="cancelled", error="remote"))

    def close(self) -> None:
        self.closed = True

    def health(self) -> Health:
        if self.problem is None:
            return Health()
        return Health(ok=False, problem=self.problem, since=1.0)


def make(tmp_path: Path, executor: Executor) -> Dispatcher:
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self", "b.qcb": "done-job-self"})
    return Dispatcher([str(root)], MemorySupervisor(), executor=executor,
                      audit=tmp_path / "audit.db")


def test_another_executor_runs_the_firings_and_the_recorder_keeps_its_outcomes(tmp_path):
    ex = QueueExecutor()
    d = make(tmp_path, ex)
    assert ex.supervisor is d.supervisor and ex.timeout == d.settings.timeout
    with d:
        for job in (1, 2):
            d.emit(Event(name="complete", type="job", job=job))
        assert not d.wait_idle(0.2)  # the runs are out there: not idle
        assert d.backlog == 4
        # Submitted in matcher order, each already recorded (it has its trail id).
        assert [(f.job, f.callback) for f in ex.submitted] == [
            (1, "a.qcb"), (1, "b.qcb"), (2, "a.qcb"), (2, "b.qcb")]
        assert all(f.id > 0 for f in ex.submitted)
        assert {r.status for r in d.audit.query()} == {"pending"}
        ex.finish_all()
        assert d.wait_idle(10)
        assert d.backlog == 0
        rows = d.audit.query()
    assert ex.closed and not ex.cancelled
    assert [(r.job, r.callback, r.status) for r in rows] == [
        (1, "a.qcb", "ok"), (1, "b.qcb", "ok"), (2, "a.qcb", "ok"), (2, "b.qcb", "ok")]
    assert all(r.attempts == 1 and r.started_at is not None and r.duration == 0.5
               for r in rows)
    assert rows[0].output == "remote a.qcb\n"


def test_close_without_drain_has_the_executor_cancel_what_it_holds(tmp_path):
    ex = QueueExecutor()
    d = make(tmp_path, ex)
    d.emit(Event(name="complete", type="job", job=1))
    deadline = time.monotonic() + 10
    while len(ex.submitted) < 2:
        assert time.monotonic() < deadline, "the firings never reached the executor"
        time.sleep(0.01)
    assert d.close(drain=False) is False
    assert ex.cancelled and ex.closed
    assert [r.status for r in d.audit.query()] == ["cancelled", "cancelled"]


def test_an_executor_problem_shows_in_health(tmp_path):
    ex = QueueExecutor()
    with make(tmp_path, ex) as d:
        assert d.health.ok
        ex.problem = "the broker is out of reach"
        assert d.health == Health(ok=False, problem="the broker is out of reach", since=1.0)
        ex.problem = None
        assert d.health.ok


class RefusingStore(SqliteAuditStore):
    def start(self, firing_id: int, started_at: float) -> int:
        raise AuditError("disk gone")


def test_an_attempt_the_trail_cannot_count_is_not_run_once_closing_gave_up(tmp_path):
    store = RefusingStore(str(tmp_path / "audit.db"))
    store.begin_session()
    life, work = LifeCycle(), InFlight()
    recorder = Recorder(store, open_journal(store), DispatcherSettings(), life, work)
    work.add(firings=True)
    life.advance(Stage.ABANDONED)
    assert recorder.started(1, time.time()) is False
    assert work.firings == 0 and work.wait_idle(time.monotonic())  # nothing left counted
    assert recorder.problem is not None and "disk gone" in recorder.problem[0]
    store.close()


def test_the_life_cycle_only_moves_forward_and_work_is_counted_once() -> None:
    life = LifeCycle()
    assert life.advance(Stage.DRAINING) and not life.advance(Stage.DRAINING)
    assert life.advance(Stage.CANCELLING) and life.reached(Stage.CLOSED)
    assert not life.advance(Stage.CLOSED) and life.stage is Stage.CANCELLING
    work = InFlight()
    work.add(2, firings=True)
    work.add()
    assert not work.wait_firings_below(2, 0.01) and not work.wait_idle(time.monotonic())
    work.done(firings=True)
    assert work.wait_firings_below(2, 0.01) and work.firings == 1
    work.done(firings=True)
    work.done()
    assert work.wait_idle(None)


def test_a_firing_the_executor_does_not_take_is_recorded_crashed(tmp_path):
    class Unreachable(QueueExecutor):
        def submit(self, firing: PendingFiring) -> None:
            raise ConnectionError("broker down")

    with make(tmp_path, Unreachable()) as d:
        d.emit(Event(name="complete", type="job", job=1))
        assert d.wait_idle(10)
        rows = d.audit.query()
    assert [r.status for r in rows] == ["crashed", "crashed"]
    assert all("broker down" in (r.error or "") for r in rows)
