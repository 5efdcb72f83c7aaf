"""The Celery executor's own bookkeeping, with the broker replaced by a recorder: per-job
release, the first outcome winning, and runs held while the broker refuses them."""

from __future__ import annotations

from typing import Any

from qbcallbacks.audit.records import PendingFiring
from qbcallbacks.dispatch.remote.executor import CeleryExecutor
from qbcallbacks.dispatch.settings import DispatcherSettings
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import RunResult


class Broker:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.down = False

    def send_task(self, name: str, *, args: list[Any], **options: Any) -> None:
        if self.down:
            raise ConnectionError("connection refused")
        self.sent.append(args[0]["firing"])


class Completions:
    def __init__(self) -> None:
        self.attempts: list[int] = []
        self.done: list[tuple[int, str]] = []

    def started(self, firing_id: int, at: float) -> bool:
        self.attempts.append(firing_id)
        return True

    def complete(self, firing_id: int, result: RunResult) -> None:
        self.done.append((firing_id, result.status))


class Hub:
    name, ready, problem = "qbcallbacks.dispatcher.test", True, None


def executor() -> tuple[CeleryExecutor, Broker, Completions]:
    ex, broker, completions = CeleryExecutor("amqp://unused//"), Broker(), Completions()
    ex._app, ex.hub, ex.settings = broker, Hub(), DispatcherSettings()
    ex._completions = completions
    ex._supervisor = MemorySupervisor()
    return ex, broker, completions


def firing(fid: int, job: int) -> PendingFiring:
    return PendingFiring(event_seq=fid, ordinal=0, event=Event(name="complete", type="job",
                         job=job), job=job, callback="a.qcb", directory="/nowhere",
                         trigger="complete-job-self", language="qcb", id=fid)


def done(ex: CeleryExecutor, fid: int, status: str = "ok") -> Any:
    return ex.answer({"op": "done", "firing": fid, "result": {"status": status}})


def test_a_jobs_next_firing_is_sent_only_when_the_one_before_completes() -> None:
    ex, broker, completions = executor()
    for fid, job in ((1, 7), (2, 7), (3, 8), (4, 7)):
        ex.submit(firing(fid, job))
    assert broker.sent == [1, 3]  # one run per job at the broker
    assert ex.answer({"op": "started", "firing": 1, "at": 1.0}) == {"run": True}
    assert done(ex, 1) == {"recorded": True}
    assert broker.sent == [1, 3, 2]
    assert done(ex, 1, "error") == {"recorded": False}  # a late duplicate changes nothing
    assert ex.answer({"op": "started", "firing": 1, "at": 2.0}) == {"run": False}
    assert done(ex, 3) == {"recorded": True} and broker.sent == [1, 3, 2]
    assert done(ex, 2) == {"recorded": True} and broker.sent == [1, 3, 2, 4]
    assert done(ex, 4) == {"recorded": True}
    assert completions.done == [(1, "ok"), (3, "ok"), (2, "ok"), (4, "ok")]
    assert completions.attempts == [1] and ex.waiting == 0


def test_runs_the_broker_refuses_wait_and_go_in_order_when_it_takes_them() -> None:
    ex, broker, completions = executor()
    broker.down = True
    for fid, job in ((1, 7), (2, 7), (3, 8)):
        ex.submit(firing(fid, job))
    assert broker.sent == [] and completions.done == []
    health = ex.health()
    assert not health.ok and "connection refused" in (health.problem or "")
    broker.down = False
    ex._resend()
    assert broker.sent == [1, 3] and ex.health().ok
    assert done(ex, 1) == {"recorded": True} and broker.sent == [1, 3, 2]


def test_cancel_completes_what_waits_here_and_what_was_never_sent() -> None:
    ex, broker, completions = executor()
    ex.submit(firing(1, 7))
    ex.submit(firing(2, 7))
    broker.down = True
    ex.submit(firing(3, 8))  # refused: held here
    ex.cancel()
    assert sorted(completions.done) == [(2, "cancelled"), (3, "cancelled")]
    assert ex.answer({"op": "started", "firing": 1, "at": 1.0}) == {"run": False}
    assert (1, "cancelled") in completions.done and ex.waiting == 0
    ex.submit(firing(4, 9))
    assert completions.done[-1] == (4, "cancelled") and broker.sent == [1]
