"""Both reference supervisors give the same answer to every action in every state, and that
answer is the shared transition table's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.reference.mail import MboxTransport
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.reference.sqlite import JobSpec, SqliteSupervisor
from qbcallbacks.reference.transitions import ACTIVE, TABLES, move

STATES = sorted(ACTIVE | {"complete", "failed", "killed"})
#: The job's items: two frames and two subjobs, one running and one blocked of each, so
#: cascades that pick items by state are seen.
ITEMS = ("running", "blocked")


class Farm(Protocol):
    def act(self, kind: str, action: str) -> bool: ...
    def snapshot(self) -> tuple[Any, ...]: ...
    events: list[str]


class MemoryFarm:
    def __init__(self, status: str, item_status: str | None) -> None:
        self.sup = MemorySupervisor()
        job = self.sup.submit("j", status=status,
                              work={"1": item_status or ITEMS[0], "2": ITEMS[1]}, subjobs=2)
        self.id = job.id
        self.sup.set_subjob_status(job.id, 0, item_status or ITEMS[0])
        self.sup.set_subjob_status(job.id, 1, ITEMS[1])
        self.sup.drain_events()
        self.events: list[str] = []

    def act(self, kind: str, action: str) -> bool:
        if kind == "job":
            ok = self.sup.job_action(action, self.id)  # type: ignore[arg-type]
        elif kind == "work":
            ok = self.sup.work_action(action, self.id, "1")  # type: ignore[arg-type]
        else:
            ok = self.sup.subjob_action(action, self.id, 0)  # type: ignore[arg-type]
        self.events = [e.format() for e in self.sup.drain_events()]
        return ok

    def snapshot(self) -> tuple[Any, ...]:
        [info] = self.sup.jobinfo("-id", self.id, "-agenda", "-subjobs") or [{}]
        if not info:
            return ("gone",)
        return (info["status"], [w["status"] for w in info["agenda"]],
                [s["status"] for s in info["subjobs"]])


class SqliteFarm:
    def __init__(self, path: Path, status: str, item_status: str | None) -> None:
        self.seen: list[Event] = []
        self.sup = SqliteSupervisor(path, mail=MboxTransport(path.with_suffix(".mbox")))
        [job] = self.sup.submit([JobSpec(name="j", frames=("1", "2"), subjobs=2)])
        self.id = job.id
        self.sup.set_job_status(job.id, status)
        self.sup.set_work_status(job.id, "1", item_status or ITEMS[0])
        self.sup.set_work_status(job.id, "2", ITEMS[1])
        self.sup.set_subjob_status(job.id, 0, item_status or ITEMS[0])
        self.sup.set_subjob_status(job.id, 1, ITEMS[1])
        self.sup.listener = lambda event, _job: self.seen.append(event)
        self.events: list[str] = []

    def act(self, kind: str, action: str) -> bool:
        if kind == "job":
            ok = self.sup.job_action(action, self.id)  # type: ignore[arg-type]
        elif kind == "work":
            ok = self.sup.work_action(action, self.id, "1")  # type: ignore[arg-type]
        else:
            ok = self.sup.subjob_action(action, self.id, 0)  # type: ignore[arg-type]
        self.events = [e.format() for e in self.seen]
        return ok

    def snapshot(self) -> tuple[Any, ...]:
        [info] = self.sup.jobinfo("-id", self.id, "-agenda", "-subjobs") or [{}]
        if not info or info["status"] == "removed":
            return ("gone",)
        return (info["status"], [w["status"] for w in info["agenda"]],
                [s["status"] for s in info["subjobs"]])


def _cases() -> Iterator[tuple[str, str, str]]:
    for kind, table in TABLES.items():
        for action in [*table, *(["remove"] if kind == "job" else [])]:
            for status in STATES:
                yield kind, action, status


@pytest.mark.parametrize(("kind", "action", "status"), list(_cases()))
def test_both_supervisors_answer_every_action_alike(tmp_path: Path, kind: str, action: str,
                                                    status: str) -> None:
    # For a job action the job is in `status`; for an item action the acted-on item is.
    job_status = status if kind == "job" else "running"
    item_status = None if kind == "job" else status
    memory = MemoryFarm(job_status, item_status)
    sqlite = SqliteFarm(tmp_path / "farm.db", job_status, item_status)
    try:
        answers = (memory.act(kind, action), sqlite.act(kind, action))
        assert answers[0] == answers[1]
        assert memory.snapshot() == sqlite.snapshot()
        assert memory.events == sqlite.events
        expected = True if action == "remove" else move(kind, action, status) is not None  # type: ignore[arg-type]
        assert answers[0] is expected
        if not expected:
            assert memory.events == []
    finally:
        sqlite.sup.close()


@pytest.mark.parametrize("kind", ["work", "subjob"])
@pytest.mark.parametrize("action", ["kill", "fail"])
@pytest.mark.parametrize("final", ["complete", "failed", "killed"])
def test_a_finished_item_cannot_be_killed_or_failed(kind: str, action: str, final: str) -> None:
    assert move(kind, action, final) is None  # type: ignore[arg-type]


def test_refusals_the_two_supervisors_used_to_disagree_on() -> None:
    assert move("work", "retry", "running") is None
    assert move("subjob", "unblock", "running") is None
    assert move("job", "suspend", "blocked") is None
    assert not move("job", "block", "running").items  # type: ignore[union-attr]


def test_migrate_preempt_and_interrupt_are_distinct() -> None:
    rows = {a: TABLES["job"][a] for a in ("migrate", "preempt", "interrupt")}
    assert len(set(rows.values())) == 3
    assert not rows["preempt"].items and rows["interrupt"].items == {"running"}
    assert rows["migrate"].clear_host and not rows["interrupt"].clear_host


@pytest.mark.parametrize("status", STATES)
def test_state_changes_return_the_same_events_on_both(tmp_path: Path, status: str) -> None:
    memory = MemorySupervisor()
    mjob = memory.submit("j", work=["1"], subjobs=1)
    sqlite = SqliteSupervisor(tmp_path / "farm.db",
                              mail=MboxTransport(tmp_path / "mail.mbox"))
    try:
        [sjob] = sqlite.submit([JobSpec(name="j", frames=("1",), subjobs=1)])
        for sup, job in ((memory, mjob), (sqlite, sjob)):
            changes = [sup.set_work_status(job.id, "1", status),
                       sup.set_subjob_status(job.id, 0, status),
                       sup.set_job_status(job.id, status)]
            shape = [[(e.name, e.type, e.extra) for e in events] for events in changes]
            if sup is memory:
                expected = shape
            else:
                assert shape == expected
        assert all(isinstance(e, Event) for e in sqlite.set_job_status(sjob.id, "killed"))
    finally:
        sqlite.close()
