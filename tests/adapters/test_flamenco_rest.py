"""Callbacks' questions and actions reach the Manager as it means them (a stand-in Manager
running the Manager's state machine): resume asks for `requeueing`, fail for `failed`, a 500
is told apart from a fault by reading back, any task of the job can be acted on, and the
client pools connections and retries reads."""

from __future__ import annotations

import json

import pytest

from qbcallbacks.adapters.flamenco.api import ManagerAPI
from qbcallbacks.adapters.flamenco.messages import read_update
from qbcallbacks.adapters.flamenco.reconcile import apply_job_update, reconcile
from qbcallbacks.adapters.flamenco.rest import FlamencoSupervisor
from qbcallbacks.model.supervisor import HostError, MailMessage, Supervisor
from support.flamenco_payloads import new_job_update


@pytest.fixture
def api(flamenco_manager):
    client = ManagerAPI(flamenco_manager.url, connect_timeout=2, read_timeout=5, backoff=0.01)
    yield client
    client.close()


@pytest.fixture
def supervisor(api, state):
    return FlamencoSupervisor(api, state)


def known(manager, api, state, tasks: int = 2):
    """A job the adapter has seen (through a reconciliation), as number and record."""
    job = manager.machine.submit("shot", tasks=tasks)
    reconcile(api, state)
    return state.job_number(job.uuid), job


def posts(manager) -> list[tuple[str, str]]:
    return [(p.rsplit("/", 2)[-2][:8], b["status"]) for m, p, b in manager.calls if m == "POST"]


def test_it_is_a_supervisor(supervisor) -> None:
    assert isinstance(supervisor, Supervisor)


def test_jobinfo_reads_the_job_and_every_task(flamenco_manager, api, state, supervisor) -> None:
    number, job = known(flamenco_manager, api, state)
    flamenco_manager.machine.task_status_change(job.tasks[1], "failed")
    (info,) = supervisor.jobinfo("-id", number, "-agenda")
    assert (info["id"], info["name"], info["status"], info["pgrp"], info["priority"]) == (
        number, "shot", "failed", number, 50)
    assert info["agenda"] == [{"name": "render-0", "status": "killed"},
                              {"name": "render-1", "status": "failed"}]
    assert supervisor.jobinfo("-id", 99) == []


def test_resume_of_a_paused_job_requeues_it(flamenco_manager, api, state, supervisor) -> None:
    number, job = known(flamenco_manager, api, state)
    assert supervisor.job_action("block", number) is True
    assert flamenco_manager.machine.jobs[job.uuid].status == "paused"
    assert supervisor.job_action("resume", number) is True
    # Asked `requeueing`; the state machine queued the paused tasks and the job.
    assert posts(flamenco_manager)[-1][1] == "requeueing"
    assert flamenco_manager.machine.jobs[job.uuid].status == "queued"
    assert {flamenco_manager.machine.tasks[t].status for t in job.tasks} == {"queued"}
    # A job that is not paused has nothing to resume: nothing is asked.
    calls = len(flamenco_manager.calls)
    assert supervisor.job_action("unblock", number) is False
    assert not [c for c in flamenco_manager.calls[calls:] if c[0] == "POST"]


def test_fail_makes_the_job_failed(flamenco_manager, api, state, supervisor) -> None:
    number, job = known(flamenco_manager, api, state)
    assert supervisor.job_action("fail", number) is True
    assert posts(flamenco_manager) == [(job.uuid[:8], "failed")]
    assert flamenco_manager.machine.jobs[job.uuid].status == "failed"
    assert supervisor.job_action("kill", number) is True  # cancel a failed job
    assert flamenco_manager.machine.jobs[job.uuid].status == "canceled"


def test_a_refusal_is_told_apart_from_a_fault(flamenco_manager, api, state, supervisor) -> None:
    number, job = known(flamenco_manager, api, state)
    flamenco_manager.refuse = 1  # 500, nothing changed: a refusal
    assert supervisor.job_action("kill", number) is False
    assert flamenco_manager.machine.jobs[job.uuid].status == "queued"
    flamenco_manager.down = True  # the Manager cannot be read at all: a fault
    with pytest.raises(HostError, match="did not answer"):
        supervisor.job_action("kill", number)
    flamenco_manager.down = False
    assert supervisor.job_action("kill", number) is True


def test_work_actions_reach_tasks_the_adapter_never_saw(flamenco_manager, api, state,
                                                         supervisor) -> None:
    job = flamenco_manager.machine.submit("shot", tasks=3)
    # Known from its submission message only: no task of it was ever mentioned.
    update = read_update("job", json.dumps(new_job_update(job)).encode())
    apply_job_update(state, update, None)
    number = state.job_number(job.uuid)
    assert state.task_uuid(number, "render-2") is None
    assert supervisor.work_action("kill", number, "render-2") is True
    assert flamenco_manager.machine.tasks[job.tasks[2]].status == "canceled"
    assert supervisor.work_action("retry", number, "render-2") is True
    assert flamenco_manager.machine.tasks[job.tasks[2]].status == "queued"
    assert supervisor.work_action("unblock", number, "render-2") is False  # not paused
    assert supervisor.work_action("kill", number, "no-such-task") is False


def test_remove_and_actions_flamenco_has_not(flamenco_manager, api, state, supervisor) -> None:
    number, job = known(flamenco_manager, api, state)
    assert supervisor.job_action("migrate", number) is False
    assert supervisor.subjob_action("kill", number, 0) is False
    assert supervisor.job_action("kill", 4242) is False
    assert supervisor.job_action("remove", number) is True
    assert job.uuid not in flamenco_manager.machine.jobs


def test_mail_is_kept_not_sent(supervisor) -> None:
    supervisor.mail(MailMessage(to=("ann@example.org",), subject="done", body="x"))
    assert [m.subject for m in supervisor.mails] == ["done"]


def test_reads_are_retried_through_blips_and_busy_answers(flamenco_manager, api) -> None:
    job = flamenco_manager.machine.submit("shot", tasks=1)
    flamenco_manager.blips = 2
    assert api.job(job.uuid).status == "queued"
    flamenco_manager.busy = 2
    assert [j.id for j in api.jobs()] == [job.uuid]
    flamenco_manager.busy = 10  # more than the attempts: the read fails as a fault
    with pytest.raises(HostError, match="503"):
        api.job(job.uuid)


def test_a_write_is_never_sent_twice(flamenco_manager, api) -> None:
    job = flamenco_manager.machine.submit("shot", tasks=1)
    flamenco_manager.blips = 1  # the connection drops after the request went out
    with pytest.raises(HostError):
        api.set_job_status(job.uuid, "paused", "test")
    assert [c for c in flamenco_manager.calls if c[0] == "POST"] == []


def test_connections_are_pooled(flamenco_manager, api) -> None:
    job = flamenco_manager.machine.submit("shot", tasks=1)
    for _ in range(20):
        api.job(job.uuid)
    assert len(flamenco_manager.peers) == 1


def test_a_manager_that_is_down_is_a_host_error(state) -> None:
    down = ManagerAPI("http://127.0.0.1:9", connect_timeout=1, attempts=2, backoff=0.01)
    with pytest.raises(HostError, match="did not answer"):
        down.jobs()
    down.close()


def test_a_status_a_later_manager_adds_stops_nothing(flamenco_manager, api, state) -> None:
    odd = flamenco_manager.machine.submit("odd", tasks=1)
    plain = flamenco_manager.machine.submit("plain", tasks=1)
    reconcile(api, state)
    flamenco_manager.machine.jobs[odd.uuid].status = "archived"
    flamenco_manager.machine.tasks[odd.tasks[0]].status = "archived"
    flamenco_manager.machine.run(plain.uuid)
    raised = [line["event"] for _, line in reconcile(api, state)]
    assert raised == ["complete", "complete"]  # the plain job's task, then the job
    assert state.job_status(odd.uuid) == "queued"  # listed, so not removed; left alone
