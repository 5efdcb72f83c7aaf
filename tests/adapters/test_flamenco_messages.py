"""The Manager's payloads, in the shapes its code sends, become events from state: one per real
change, whatever `previous_status` says (the Manager's own state machine produces them here)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks.adapters.flamenco.messages import (
    JOB_STATUS,
    TASK_STATUS,
    JobUpdate,
    PayloadError,
    TaskRecord,
    read_update,
    work_name,
)
from qbcallbacks.adapters.flamenco.reconcile import apply_job_update, apply_task_update
from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.model.statuses import JOB_STATES
from qbcallbacks.model.triggers import EXTRA_RE
from qbcallbacks.stream import BadLine, read_events
from support import flamenco_payloads as shapes
from support.flamenco_statemachine import StateMachine


class Fed:
    """A state machine whose messages are fed to an adapter state as they are published."""

    def __init__(self, state: AdapterState) -> None:
        self.state = state
        self.events: list[str] = []
        self.lines: list[dict[str, Any]] = []
        self.machine = StateMachine(self.publish)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        update = read_update("job" if topic == "/jobs" else "task",
                             json.dumps(payload).encode())
        if isinstance(update, JobUpdate):
            tasks = None
            if update.refresh_tasks:
                job = self.machine.jobs[update.id]
                tasks = [TaskRecord(id=t.uuid, name=t.name, status=t.status, updated=t.updated)
                         for t in (self.machine.tasks[u] for u in job.tasks)]
            raised = apply_job_update(self.state, update, tasks)
        else:
            raised = apply_task_update(self.state, update)
        for _, line in raised:
            self.lines.append(line)
            (step,) = list(read_events([json.dumps(line)]))
            assert not isinstance(step, BadLine), step
            self.events.append(step.event.format())


@pytest.fixture
def fed(state):
    return Fed(state)


def test_every_mapped_state_is_an_engine_state() -> None:
    for state, _ in (*JOB_STATUS.values(), *TASK_STATUS.values()):
        assert state in JOB_STATES


def test_each_shape_the_manager_sends_is_read() -> None:
    job = shapes.Job("aaaa0001-0000-4000-8000-000000000001", "shot", "active",
                     "2026-03-01T12:00:00.5Z")
    task = shapes.Task("bbbb0001-0000-4000-8000-000000000001", job.uuid, "render 1", "active",
                       "2026-03-01T12:00:01Z", worker={"name": "w1", "uuid": "x"})
    jobs = [shapes.new_job_update(job), shapes.job_status_set(job, "queued", True),
            shapes.job_deleter_deleted(job.uuid)]
    for payload in jobs:
        update = read_update("job", json.dumps(payload).encode())
        assert isinstance(update, JobUpdate) and update.id == job.uuid
    assert read_update("job", json.dumps(jobs[1]).encode()).refresh_tasks is True
    for payload in (shapes.new_task_update(task), shapes.task_status_change_only(task, "queued")):
        assert read_update("task", json.dumps(payload).encode()).job_id == job.uuid


def test_the_deleters_message_removes_the_job_once(fed, state) -> None:
    m = fed.machine
    job = m.submit("shot", tasks=1)
    m.run(job.uuid)
    gone = shapes.job_deleter_deleted(job.uuid)
    assert gone["was_deleted"] is True and gone["status"] == ""
    m.delete(job.uuid)
    assert fed.events.count("removed-job-1") == 1
    fed.publish("/jobs", gone)  # the broker delivers it again
    fed.publish(f"/jobs/{job.uuid}", shapes.task_status_change_only(
        shapes.Task("cccc0001-0000-4000-8000-000000000001", job.uuid, "late", "failed",
                    "2026-03-01T13:00:00Z"), "active"))
    assert fed.events.count("removed-job-1") == 1 and fed.events[-1] == "removed-job-1"
    assert state.job_uuid(1) is None and state.job_number(job.uuid) == 1


def test_updates_that_are_not_transitions_raise_nothing(fed) -> None:
    m = fed.machine
    job = m.submit("shot", tasks=3)
    m.run(job.uuid)  # each task reports progress: job updates without previous_status
    m.set_priority(job.uuid, 80)
    m.delete(job.uuid)  # the deletion request repeats `completed`
    assert fed.events == [
        "submit-job-1", "running-work-1-render-0", "running-job-1",
        "complete-work-1-render-0", "running-work-1-render-1", "complete-work-1-render-1",
        "running-work-1-render-2", "complete-work-1-render-2", "complete-job-1",
        "removed-job-1"]


def test_bulk_task_changes_are_read_back(fed) -> None:
    m = fed.machine
    job = m.submit("shot", tasks=3)
    m.task_status_change(job.tasks[0], "active")
    m.job_status_change(job.uuid, "pause-requested")  # queued tasks paused in bulk
    m.task_status_change(job.tasks[0], "completed")  # the last active one: job paused
    m.job_status_change(job.uuid, "requeueing")  # paused tasks queued again in bulk
    m.job_status_change(job.uuid, "cancel-requested")  # all canceled in bulk
    assert fed.events == [
        "submit-job-1", "running-work-1-render-0", "running-job-1",
        "blocked-work-1-render-1", "blocked-work-1-render-2",
        "complete-work-1-render-0", "blocked-job-1",
        "killed-work-1-render-1", "killed-work-1-render-2", "killed-job-1"]


def test_a_late_message_changes_nothing(fed, state) -> None:
    m = fed.machine
    job = m.submit("shot", tasks=1)
    old = shapes.job_status_set(shapes.Job(job.uuid, "shot", "active", "2026-01-01T00:00:00Z"),
                                "queued", False)
    m.run(job.uuid)
    before = list(fed.events)
    fed.publish("/jobs", old)
    assert fed.events == before and state.job_status(job.uuid) == "completed"


def test_job_numbers_survive_a_restart_and_are_never_reused(tmp_path) -> None:
    s = AdapterState(tmp_path / "s.db")
    Fed(s).machine.submit("one")
    s.close()
    s = AdapterState(tmp_path / "s.db")
    second = Fed(s)
    second.machine.submit("two")
    assert second.events == ["submit-job-2"]
    s.close()


@pytest.mark.parametrize("payload", [
    b"not json", b"[1, 2]", b'{"id": "x"}', b'{"id": "x", "status": "exploded"}',
    b"\xff\xfe", b"{" * 100_000, b'{"id": 5, "status": "queued"}',
    b'{"id": "\\ud800", "status": "active"}', b'{"id": "ok", "name": "\\udfff", '
    b'"status": "active"}', b'{"id": "x", "status": "", "was_deleted": "2026-01-01"}',
    b'{"id": "x", "status": "", "was_deleted": false}',
    b'{"id": "x y", "status": "queued"}', b'{"id": "x", "status": "queued", "priority": "9"}'])
def test_hostile_payloads_are_refused_with_a_reason(payload) -> None:
    with pytest.raises(PayloadError):
        read_update("job", payload)


def test_a_task_payload_needs_its_job() -> None:
    with pytest.raises(PayloadError, match="job_id"):
        read_update("task", b'{"id": "t", "status": "queued"}')


@given(st.text(max_size=40), st.text(alphabet="0123456789abcdef-", min_size=1, max_size=36))
def test_work_names_are_items_a_trigger_can_address(name, task_id) -> None:
    assert EXTRA_RE.match(work_name(name, task_id))


def test_every_job_status_raises_its_event_as_a_valid_line(fed) -> None:
    job = fed.machine.submit("shot", tasks=1)
    for status in JOB_STATUS:  # each line is read back as an event-stream line by `fed`
        fed.machine.job_status_change(job.uuid, status)
    raised = {event.rsplit("-job-", 1)[0] for event in fed.events if "-job-" in event}
    assert {e for _, e in JOB_STATUS.values() if e} <= raised
    # Each job event's line carries the job in the state its status maps to.
    states = {event: state for state, event in JOB_STATUS.values() if event}
    for line in fed.lines:
        if line["type"] == "job" and line["event"] in states:
            assert line["job"]["status"] == states[line["event"]]
