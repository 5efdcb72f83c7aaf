from __future__ import annotations

import pytest

from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.supervisor import HostError, MailMessage, Supervisor
from qbcallbacks.reference.mail import MboxTransport
from qbcallbacks.reference.sqlite import JobSpec, SqliteSupervisor


def make(tmp_path):
    seen: list[tuple[Event, Job]] = []
    sup = SqliteSupervisor(tmp_path / "farm.db", mail=MboxTransport(tmp_path / "mail.mbox"),
                           listener=lambda e, j: seen.append((e, j)))
    return sup, seen


def test_protocol_and_process_groups(tmp_path):
    sup, seen = make(tmp_path)
    assert isinstance(sup, Supervisor)
    render, comp = sup.submit([JobSpec(name="shot", label="render", frames=("1", "2")),
                               JobSpec(name="comp", label="comp", frames=("1", "2"),
                                       blocked=True, parent=0)])
    assert (render.pgrp, comp.pgrp, comp.pid) == (render.id, render.id, render.id)
    assert [e.format() for e, _ in seen] == [
        f"submit-job-{render.id}", f"submit-job-{comp.id}", f"blocked-job-{comp.id}"]
    group = sup.jobinfo("-pgrp", render.id)
    assert [j["label"] for j in group] == ["render", "comp"]
    assert sup.jobinfo("-id", comp.id)[0]["status"] == "blocked"
    assert sup.jobinfo("-id", 999) == []
    full = sup.jobinfo("-id", comp.id, "-agenda", "-subjobs")[0]
    assert full["agenda"] == [{"name": "1", "status": "blocked"},
                              {"name": "2", "status": "blocked"}]
    assert full["subjobs"] == []
    with pytest.raises(HostError):
        sup.jobinfo("-bogus", 1)
    sup.close()


def test_work_actions_report_events(tmp_path):
    sup, seen = make(tmp_path)
    (job,) = sup.submit([JobSpec(name="comp", frames=("1", "2"), blocked=True)])
    seen.clear()
    assert sup.work_action("unblock", job.id, "1")
    assert not sup.work_action("unblock", job.id, "1")  # no longer blocked
    assert not sup.work_action("unblock", job.id, "9")
    assert sup.set_work_status(job.id, "1", "running")
    assert sup.set_work_status(job.id, "1", "complete")
    assert sup.work_action("retry", job.id, "1")
    assert [e.format() for e, _ in seen] == [
        f"running-work-{job.id}-1", f"complete-work-{job.id}-1"]
    assert sup.work(job.id)[0].retries == 1
    sup.close()


def test_job_actions(tmp_path):
    sup, seen = make(tmp_path)
    (job,) = sup.submit([JobSpec(name="a", frames=("1",), blocked=True)])
    assert sup.job_action("unblock", job.id)
    assert sup.work(job.id)[0].status == "pending"
    assert sup.job_action("kill", job.id)
    assert not sup.job_action("kill", job.id)
    assert sup.work(job.id)[0].status == "killed"
    assert sup.job_action("remove", job.id)
    names = [e.name for e, _ in seen]
    assert names[-3:] == ["killed", "killed", "removed"]
    assert not sup.job_action("unblock", 12345)
    sup.close()


def test_state_persists_and_mail_goes_to_mbox(tmp_path):
    sup, _ = make(tmp_path)
    (job,) = sup.submit([JobSpec(name="persist", frames=("1",))])
    sup.set_job_status(job.id, "running")
    sup.mail(MailMessage(to=("a@example.com",), subject="x", body="y"))
    sup.close()
    again = SqliteSupervisor(tmp_path / "farm.db")
    assert again.job(job.id) is not None
    assert again.job(job.id).status == "running"  # type: ignore[union-attr]
    again.close()
    assert (tmp_path / "mail.mbox").read_text().count("Subject: x") == 1


def test_apply_takes_state_silently(tmp_path):
    sup, seen = make(tmp_path)
    sup.apply(Event(name="submit", type="job", job=5), Job(id=5, label="render", name="r"))
    sup.apply(Event(name="running", type="work", job=5, extra="1"))
    sup.apply(Event(name="complete", type="work", job=5, extra="1"))
    sup.apply(Event(name="blocked", type="work", job=5, extra="2"))
    sup.apply(Event(name="failed", type="job", job=5))
    sup.apply(Event(name="complete", type="subjob", job=6, extra="0"))
    assert seen == []
    assert sup.job(5).status == "failed"  # type: ignore[union-attr]
    assert [(w.name, w.status) for w in sup.work(5)] == [("1", "complete"), ("2", "blocked")]
    assert sup.subjobs(6) == [(0, "complete", "")]
    assert sup.work_action("unblock", 5, "2")
    sup.close()
