"""Callbacks' questions and actions reach a Flamenco Manager's REST API (a small HTTP server
standing in for it here, answering as Flamenco's OpenAPI document says)."""

from __future__ import annotations

import json

import pytest

from qbcallbacks.adapters.flamenco.messages import read_update
from qbcallbacks.adapters.flamenco.rest import FlamencoSupervisor
from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.model.supervisor import HostError, MailMessage, Supervisor
from support.flamenco_manager import JOB, TASK, Manager


@pytest.fixture
def supervisor(tmp_path, flamenco_manager):
    state = AdapterState(tmp_path / "state.db")
    job = json.dumps({"id": JOB, "status": "active", "updated": "1"}).encode()
    state.translate("flamenco/jobs", job, read_update("job", job))
    task = json.dumps({"id": TASK, "job_id": JOB, "name": "render 1", "status": "failed",
                       "updated": "2"}).encode()
    state.translate(f"flamenco/jobs/{JOB}", task, read_update("task", task))
    yield FlamencoSupervisor(flamenco_manager, state, timeout=5)
    state.close()


def test_it_is_a_supervisor(supervisor) -> None:
    assert isinstance(supervisor, Supervisor)


def test_jobinfo_reads_the_job_and_its_tasks(supervisor) -> None:
    (job,) = supervisor.jobinfo("-id", 1, "-agenda")
    assert (job["id"], job["name"], job["status"], job["pgrp"], job["priority"]) == (
        1, "shot", "running", 1, 60)
    assert job["agenda"] == [{"name": "render_1", "status": "failed"}]
    assert supervisor.jobinfo("-id", 99) == []
    with pytest.raises(HostError):
        supervisor.jobinfo("-bogus")


def test_actions_become_status_changes(supervisor) -> None:
    assert supervisor.job_action("kill", 1) is True
    assert supervisor.work_action("retry", 1, "render_1") is True
    assert supervisor.job_action("remove", 1) is True
    posts = [(m, p, b["status"]) for m, p, b in Manager.calls if m == "POST"]  # type: ignore[index]
    assert posts == [("POST", f"/api/v3/jobs/{JOB}/setstatus", "cancel-requested"),
                     ("POST", f"/api/v3/tasks/{TASK}/setstatus", "queued")]
    assert ("DELETE", f"/api/v3/jobs/{JOB}", None) in Manager.calls


def test_refused_and_impossible_actions_answer_false(supervisor) -> None:
    assert supervisor.work_action("block", 1, "render_1") is False  # the Manager says 422
    assert supervisor.job_action("migrate", 1) is False
    assert supervisor.job_action("kill", 42) is False
    assert supervisor.work_action("kill", 1, "no-such-task") is False
    assert supervisor.subjob_action("kill", 1, 0) is False


def test_mail_is_kept_not_sent(supervisor) -> None:
    supervisor.mail(MailMessage(to=("ann@example.org",), subject="done", body="x"))
    assert [m.subject for m in supervisor.mails] == ["done"]


def test_a_manager_that_is_down_is_a_host_error(tmp_path) -> None:
    state = AdapterState(tmp_path / "s.db")
    job = json.dumps({"id": JOB, "status": "active", "updated": "1"}).encode()
    state.translate("flamenco/jobs", job, read_update("job", job))
    down = FlamencoSupervisor("http://127.0.0.1:9", state, timeout=2)
    with pytest.raises(HostError, match="did not answer"):
        down.job_action("kill", 1)
    state.close()
