"""The in-memory supervisor: jobinfo, the action tables, events raised, records kept."""

from __future__ import annotations

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.model.supervisor import HostError, MailMessage, Supervisor, parse_jobinfo_args
from qbcallbacks.reference.memory import MemorySupervisor


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=10)


def test_it_is_a_supervisor(sup: MemorySupervisor) -> None:
    assert isinstance(sup, Supervisor)


def test_submit_builds_groups_and_raises_submit_events(sup: MemorySupervisor) -> None:
    a = sup.submit("a", label="render", work=["1", "2"])
    b = sup.submit("b", label="comp", pgrp=a.id, pid=a.id)
    assert (a.id, a.pgrp, b.id, b.pgrp, b.pid) == (10, 10, 11, 10, 10)
    assert sup.job(b.id).label == "comp"
    assert sup.drain_events() == [Event(name="submit", type="job", job=10),
                                  Event(name="submit", type="job", job=11)]
    assert sup.drain_events() == []
    with pytest.raises(HostError, match="already used"):
        sup.submit("c", label="render", pgrp=a.id)


def test_jobinfo_by_id_and_group_with_agenda_and_subjobs(sup: MemorySupervisor) -> None:
    a = sup.submit("a", label="render", work={"1": "complete", "2": "running"}, subjobs=2)
    b = sup.submit("b", pgrp=a.id)
    sup.submit("c")
    [info] = sup.jobinfo("-id", a.id)
    assert {k: info[k] for k in ("id", "name", "label", "status", "pgrp", "pid")} == {
        "id": a.id, "name": "a", "label": "render", "status": "pending", "pgrp": a.id,
        "pid": 0}
    assert [j["id"] for j in sup.jobinfo("-pgrp", str(a.id))] == [a.id, b.id]
    [full] = sup.jobinfo("-id", a.id, "-agenda", "-subjobs")
    assert full["agenda"] == [{"name": "1", "status": "complete"},
                              {"name": "2", "status": "running"}]
    assert [s["id"] for s in full["subjobs"]] == [0, 1]
    assert sup.jobinfo("-id", 999) == []


@pytest.mark.parametrize("args", [(), ("-id",), ("-id", "x"), ("-id", True), ("-owner", 1),
                                  (5,), ("-agenda",)])
def test_bad_jobinfo_arguments(args: tuple[object, ...]) -> None:
    with pytest.raises(HostError):
        parse_jobinfo_args(args)


def test_job_actions_follow_the_state_table(sup: MemorySupervisor) -> None:
    job = sup.submit("j", status="blocked")
    assert sup.job_action("unblock", job.id) is True
    assert sup.job_status(job.id) == "pending"
    assert sup.job_action("unblock", job.id) is False  # not blocked any more
    assert sup.job_action("kill", job.id) is True
    assert sup.job_action("kill", job.id) is False  # final
    assert sup.job_action("resume", 999) is False
    assert [(a.action, a.ok) for a in sup.actions] == [
        ("unblock", True), ("unblock", False), ("kill", True), ("kill", False),
        ("resume", False)]
    names = [e.name for e in sup.drain_events()]
    assert names == ["submit", "killed"]  # pending is not an event name


def test_remove_forgets_the_job(sup: MemorySupervisor) -> None:
    job = sup.submit("j")
    assert sup.job_action("remove", job.id)
    assert sup.jobinfo("-id", job.id) == []
    assert sup.drain_events()[-1] == Event(name="removed", type="job", job=job.id)


def test_work_and_subjob_changes_raise_item_events(sup: MemorySupervisor) -> None:
    job = sup.submit("j", work={"1": "blocked", "2": "running"}, subjobs=1)
    sup.drain_events()
    assert sup.work_action("unblock", job.id, "1")
    assert not sup.work_action("unblock", job.id, "2")
    assert not sup.work_action("unblock", job.id, "nope")
    assert sup.set_work_status(job.id, "2", "complete") == [
        Event(name="complete", type="work", job=job.id, extra="2")]
    assert sup.work_action("retry", job.id, "2")
    assert sup.subjob_action("kill", job.id, 0)
    assert not sup.subjob_action("kill", job.id, 5)
    assert sup.drain_events() == [
        Event(name="complete", type="work", job=job.id, extra="2"),
        Event(name="killed", type="subjob", job=job.id, extra="0")]
    with pytest.raises(HostError):
        sup.set_work_status(job.id, "zz", "complete")


def test_mail_is_recorded(sup: MemorySupervisor) -> None:
    sup.mail(MailMessage(to=("ops@example.com",), subject="s", body="b"))
    assert sup.mails[0].to == ("ops@example.com",)
