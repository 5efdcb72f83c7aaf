"""Per-job lanes: one job's runs one at a time in order, other jobs alongside, and a queue
object only for a job with runs waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from qbcallbacks.audit.records import PendingFiring
from qbcallbacks.dispatch.lanes import Lanes
from qbcallbacks.model.events import Event


def firing(job: int, ordinal: int) -> PendingFiring:
    return PendingFiring(event_seq=1, ordinal=ordinal, event=Event(name="complete", type="job",
                                                                    job=job),
                         job=job, callback=f"cb{ordinal}.py", directory="/d",
                         trigger="complete-job-self", language="python")


def until(condition: Callable[[], bool]) -> bool:
    """Whether `condition` comes true within a generous deadline (a run's lane closes just
    after its body returns)."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_runs_of_one_job_wait_in_order_and_other_jobs_run_alongside() -> None:
    gate = threading.Event()
    ran: list[tuple[int, int]] = []
    started = threading.Semaphore(0)
    done = threading.Semaphore(0)

    def execute(run: PendingFiring) -> None:
        started.release()
        if run.job == 1 and run.ordinal == 0:
            assert gate.wait(30)
        ran.append((run.job, run.ordinal))
        done.release()

    lanes = Lanes(execute, overall=4, per_runtime={"py": 4}, default_per_runtime=4)
    try:
        lanes.submit(firing(1, 0))
        assert started.acquire(timeout=30)
        for ordinal in (1, 2):
            lanes.submit(firing(1, ordinal))
        assert list(lanes._lanes[1] or ()) == [firing(1, 1), firing(1, 2)]  # two wait
        lanes.submit(firing(2, 0))
        assert done.acquire(timeout=30)  # job 2 ran while job 1's first run was held
        assert ran == [(2, 0)]
        assert until(lambda: 2 not in lanes._lanes)
        gate.set()
        for _ in range(3):
            assert done.acquire(timeout=30)
        assert [r for r in ran if r[0] == 1] == [(1, 0), (1, 1), (1, 2)]
        assert until(lambda: lanes._lanes == {})
    finally:
        gate.set()
        lanes.close()


def test_a_job_with_nothing_waiting_holds_no_queue_and_cancel_takes_the_waiting() -> None:
    gate = threading.Event()
    started = threading.Semaphore(0)

    def execute(run: PendingFiring) -> None:
        started.release()
        assert gate.wait(30)

    lanes = Lanes(execute, overall=8, per_runtime={"py": 8}, default_per_runtime=8)
    try:
        for job in range(1, 4):
            lanes.submit(firing(job, 0))
        for _ in range(3):
            assert started.acquire(timeout=30)
        assert lanes._lanes == {1: None, 2: None, 3: None}
        lanes.submit(firing(2, 1))
        lanes.submit(firing(2, 2))
        taken = lanes.cancel_waiting()
        assert [(r.job, r.ordinal) for r in taken] == [(2, 1), (2, 2)]
        assert lanes._lanes == {1: None, 2: None, 3: None}
    finally:
        gate.set()
        lanes.close()
