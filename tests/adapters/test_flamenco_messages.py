"""Flamenco's update payloads become numbered event lines, the same ones on a redelivery."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks.adapters.flamenco.messages import (
    JOB_STATUS,
    TASK_STATUS,
    PayloadError,
    read_update,
    work_name,
)
from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.model.events import Job
from qbcallbacks.model.statuses import JOB_STATES
from qbcallbacks.model.triggers import EXTRA_RE
from qbcallbacks.stream import BadLine, read_events

JOB = "2f4a3c7e-0b0d-4b2e-9a57-0f6c2d1e9a11"
TASK = "8d2c6b0e-3f1a-4c5d-8e9f-1a2b3c4d5e6f"


def job_update(status: str, previous: str | None = None, **more: object) -> bytes:
    data: dict[str, object] = {"id": JOB, "name": "shot 010", "updated": f"t-{status}",
                               "status": status, "type": "simple-blender-render",
                               "priority": 50, "refresh_tasks": False, **more}
    if previous is not None:
        data["previous_status"] = previous
    return json.dumps(data).encode()


def task_update(status: str, previous: str, name: str = "render-1-10") -> bytes:
    return json.dumps({"id": TASK, "job_id": JOB, "name": name, "updated": f"t-{status}",
                       "status": status, "previous_status": previous,
                       "activity": "rendering"}).encode()


def lines(state: AdapterState, topic: str, payload: bytes) -> list[tuple[int, dict]]:
    update = read_update("job" if topic == "flamenco/jobs" else "task", payload)
    t = state.translate(topic, payload, update)
    return [(t.first_seq + i, line) for i, line in enumerate(t.lines)]


@pytest.fixture
def state(tmp_path):
    s = AdapterState(tmp_path / "state.db")
    yield s
    s.close()


def test_every_mapped_state_is_an_engine_state() -> None:
    for state, _ in (*JOB_STATUS.values(), *TASK_STATUS.values()):
        assert state in JOB_STATES


def test_a_new_job_is_submitted_then_its_status_changes_raise_events(state) -> None:
    first = lines(state, "flamenco/jobs", job_update("queued"))
    assert [(s, ln["event"]) for s, ln in first] == [(1, "submit")]
    assert first[0][1]["job"] == {"id": 1, "name": "shot 010", "status": "pending"}
    active = lines(state, "flamenco/jobs", job_update("active", "queued"))
    assert [(s, ln["event"], ln["job"]["status"]) for s, ln in active] == [
        (2, "running", "running")]
    done = lines(state, "flamenco/jobs", job_update("completed", "active"))
    assert [ln["event"] for _, ln in done] == ["complete"]
    assert state.job_number(JOB) == 1 and state.job_uuid(1) == JOB


def test_task_updates_become_work_events_of_the_jobs_number(state) -> None:
    lines(state, "flamenco/jobs", job_update("active"))
    got = lines(state, f"flamenco/jobs/{JOB}", task_update("completed", "active"))
    assert len(got) == 1
    line = got[0][1]
    assert (line["event"], line["type"], line["job"]["id"], line["extra"]) == (
        "complete", "work", 1, "render-1-10")
    assert state.task_uuid(1, "render-1-10") == TASK
    # Every line is a valid event-stream line.
    (step,) = list(read_events([json.dumps(line)]))
    assert not isinstance(step, BadLine) and step.event.format() == "complete-work-1-render-1-10"


def test_a_redelivered_message_gives_the_same_events_and_numbers(state) -> None:
    payload = job_update("failed", "active")
    first = lines(state, "flamenco/jobs", payload)
    again = lines(state, "flamenco/jobs", payload)
    assert again == first
    other = lines(state, "flamenco/jobs", job_update("queued", "failed"))
    assert other == [] and lines(state, "flamenco/jobs", job_update("active", "queued"))[0][0] > \
        first[-1][0]


def test_job_numbers_survive_a_restart_and_are_never_reused(tmp_path) -> None:
    s = AdapterState(tmp_path / "s.db")
    lines(s, "flamenco/jobs", job_update("queued"))
    s.close()
    s = AdapterState(tmp_path / "s.db")
    assert s.job_number(JOB) == 1
    other = json.dumps({"id": "other", "status": "queued", "updated": "x"}).encode()
    assert lines(s, "flamenco/jobs", other)[0][1]["job"]["id"] == 2
    s.close()


def test_deleted_jobs_are_removed_and_unchanged_statuses_fire_nothing(state) -> None:
    lines(state, "flamenco/jobs", job_update("queued"))
    assert lines(state, "flamenco/jobs", job_update("queued", "queued", priority=70)) == []
    gone = lines(state, "flamenco/jobs", job_update("canceled", "canceled",
                                                     was_deleted="2026-01-01T00:00:00Z"))
    assert [ln["event"] for _, ln in gone] == ["removed"]


@pytest.mark.parametrize("payload", [
    b"not json", b"[1, 2]", b'{"id": "x"}', b'{"id": "x", "status": "exploded"}',
    b"\xff\xfe", b"{" * 100_000, b'{"id": 5, "status": "queued"}'])
def test_hostile_payloads_are_refused_with_a_reason(payload) -> None:
    with pytest.raises(PayloadError):
        read_update("job", payload)


def test_a_task_payload_needs_its_job() -> None:
    with pytest.raises(PayloadError, match="job_id"):
        read_update("task", b'{"id": "t", "status": "queued"}')


@given(st.text(max_size=40), st.text(alphabet="0123456789abcdef-", min_size=1, max_size=36))
def test_work_names_are_items_a_trigger_can_address(name, task_id) -> None:
    assert EXTRA_RE.match(work_name(name, task_id))


def test_mapped_jobs_are_valid_jobs(state) -> None:
    seen = set()
    for status in JOB_STATUS:
        for _, line in lines(state, "flamenco/jobs", job_update(status, "queued")):
            job = Job.model_validate(line["job"])
            assert job.status == JOB_STATUS[status][0]
            seen.add(status)
    # Every status that raises an event reached a line carrying its job.
    assert seen >= {status for status, (_, event) in JOB_STATUS.items() if event}
