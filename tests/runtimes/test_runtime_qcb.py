"""qcb commands as Supervisor calls on the callback's own job; mails without header injection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qbcallbacks.model.events import Event
from qbcallbacks.model.supervisor import MailMessage
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, NoSupervisor, RunResult, inline_code
from qbcallbacks.runtimes.qcb import QcbRuntime


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=7)


def run(rt: QcbRuntime, code: str, job: int, event: Event | None = None,
        **kw: Any) -> RunResult:
    event = event or Event(name="done", type="job", job=job)
    return rt.run(Invocation(callback="inline.qcb", code=code, job_id=job, event=event, **kw))


@pytest.mark.parametrize(("command", "before", "after"), [
    ("unblock-self", "blocked", "pending"),
    ("block-self", "pending", "blocked"),
    ("fail-self", "running", "failed"),
    ("kill-self", "running", "killed"),
    ("migrate-self", "running", "pending"),
    ("preempt-self", "running", "pending"),
    ("interrupt-self", "running", "pending"),
    ("suspend-self", "running", "suspended"),
    ("resume-self", "suspended", "pending"),
])
def test_job_commands_act_on_the_own_job(sup: MemorySupervisor, command: str, before: str,
                                         after: str) -> None:
    job = sup.submit("j", status=before)
    other = sup.submit("other", status=before)
    result = run(QcbRuntime(sup), command, job.id)
    assert result.status == "ok", result
    assert sup.job_status(job.id) == after
    assert sup.job_status(other.id) == before


@pytest.mark.parametrize(("command", "before", "after"), [
    ("unblock-work-self", "blocked", "pending"),
    ("block-work-self", "pending", "blocked"),
    ("kill-work-self", "running", "killed"),
    ("retry-work-self", "failed", "pending"),
    ("requeue-work-self", "running", "pending"),
    ("complete-work-self", "running", "complete"),
    ("fail-work-self", "running", "failed"),
])
def test_work_commands_act_on_the_same_named_item_of_the_own_job(
        sup: MemorySupervisor, command: str, before: str, after: str) -> None:
    render = sup.submit("render", label="render", work=["4", "5"])
    comp = sup.submit("comp", pgrp=render.id, work={"4": before, "5": before})
    event = Event(name="complete", type="work", job=render.id, extra="5")
    result = run(QcbRuntime(sup), command, comp.id, event)
    assert result.status == "ok", result
    assert sup.work_status(comp.id, "5") == after
    assert sup.work_status(comp.id, "4") == before
    assert sup.work_status(render.id, "5") == "pending"


def test_work_command_that_does_not_apply_is_a_noted_no_op(sup: MemorySupervisor) -> None:
    job = sup.submit("j", work=["1"])
    event = Event(name="complete", type="work", job=job.id, extra="99")
    result = run(QcbRuntime(sup), "unblock-work-self", job.id, event)
    assert result.status == "ok"
    assert "no work '99'" in result.output and "nothing done" in result.output


def test_work_command_on_a_job_event_is_an_error_and_later_commands_still_run(
        sup: MemorySupervisor) -> None:
    job = sup.submit("j", status="blocked", work=["1"])
    result = run(QcbRuntime(sup), "unblock-work-self\nunblock-self\n", job.id)
    assert result.status == "error" and result.exit_code == 1
    assert "needs a work event" in (result.error or "")
    assert sup.job_status(job.id) == "pending"


@pytest.mark.parametrize(("command", "before", "after"), [
    ("unblock-subjob-self-single", "blocked", "pending"),
    ("block-subjob-self", "pending", "blocked"),
    ("kill-subjob-self", "running", "killed"),
    ("suspend-subjob-self", "running", "suspended"),
])
def test_subjob_commands_use_the_firing_subjob_id(sup: MemorySupervisor, command: str,
                                                  before: str, after: str) -> None:
    job = sup.submit("j", subjobs=3)
    for i in range(3):
        sup.set_subjob_status(job.id, i, before)
    event = Event(name="running", type="subjob", job=job.id, extra="2")
    assert run(QcbRuntime(sup), command, job.id, event).status == "ok"
    assert sup.subjob_status(job.id, 2) == after
    assert sup.subjob_status(job.id, 1) == before
    recorded = sup.actions[-1]
    assert (recorded.target, recorded.item) == ("subjob", "2")


def test_unblock_subjob_self_unblocks_every_blocked_subjob_and_single_only_one(
        sup: MemorySupervisor) -> None:
    job = sup.submit("j", subjobs=3)
    for i in range(3):
        sup.set_subjob_status(job.id, i, "blocked")
    event = Event(name="running", type="subjob", job=job.id, extra="2")
    assert run(QcbRuntime(sup), "unblock-subjob-self-single", job.id, event).status == "ok"
    assert [sup.subjob_status(job.id, i) for i in range(3)] == ["blocked", "blocked", "pending"]
    sup.set_subjob_status(job.id, 2, "blocked")
    assert run(QcbRuntime(sup), "unblock-subjob-self", job.id, event).status == "ok"
    assert [sup.subjob_status(job.id, i) for i in range(3)] == ["pending"] * 3


def test_mail_status_uses_the_originals_variables(sup: MemorySupervisor) -> None:
    job = sup.submit("shot_030", label="lighting", status="complete", user="alice")
    result = run(QcbRuntime(sup), "mail-status", job.id)
    assert result.status == "ok" and "mailed alice" in result.output
    [mail] = sup.mails
    assert mail.to == ("alice",)
    assert mail.subject == f"Job {job.id} (shot_030) is complete"
    for line in (f"JOB_ID: {job.id}", "JOB_NAME: shot_030", "JOB_STATUS: complete",
                 "JOB_LABEL: lighting", "JOB_USER: alice", f"EVENT: done-job-{job.id}"):
        assert line in mail.body.splitlines()


def test_mail_subjob_status(sup: MemorySupervisor) -> None:
    job = sup.submit("j", subjobs=2, user="bob")
    sup.set_subjob_status(job.id, 1, "failed")
    event = Event(name="failed", type="subjob", job=job.id, extra="1")
    assert run(QcbRuntime(sup), "mail-subjob-status", job.id, event).status == "ok"
    assert sup.mails[0].subject == f"Job {job.id} (j) subjob 1 is failed"
    assert run(QcbRuntime(sup), "mail-subjob-status", job.id).status == "error"


def test_job_name_cannot_inject_mail_headers(sup: MemorySupervisor) -> None:
    job = sup.submit("evil\r\nBcc: everyone@example.com\nX-Pwned: 1", user="alice")
    for command in ("mail-status", "mail-license-status", "mail-report-status"):
        assert run(QcbRuntime(sup), command, job.id).status == "ok"
    for mail in sup.mails:
        assert "\n" not in mail.subject and "\r" not in mail.subject
        assert all("\n" not in line and "\r" not in line for line in mail.body.split("\n"))
        assert not any(line.startswith("Bcc:") for line in mail.body.splitlines())


def test_mail_message_refuses_multi_line_headers_and_odd_addresses() -> None:
    with pytest.raises(ValidationError):
        MailMessage(to=("a@example.com",), subject="x\nBcc: b@example.com", body="")
    for bad in ("a@example.com\r\nBcc: b", "a@x.com, b@y.com", "-oQ/tmp", "", "<a@b>"):
        with pytest.raises(ValidationError):
            MailMessage(to=(bad,), subject="s", body="")
    with pytest.raises(ValidationError):
        MailMessage(to=(), subject="s", body="")


def test_mail_without_an_owner_is_an_error(sup: MemorySupervisor) -> None:
    job = sup.submit("j", user="")
    result = run(QcbRuntime(sup), "mail-status", job.id)
    assert result.status == "error" and "no owner" in (result.error or "")


def test_job_callback_languages_map_to_inline_qcb(sup: MemorySupervisor) -> None:
    job = sup.submit("j", status="blocked", user="carol")
    rt = QcbRuntime(sup)
    assert run(rt, inline_code("qube", "unblock-self"), job.id).status == "ok"
    assert sup.job_status(job.id) == "pending"
    assert run(rt, inline_code("mail", ""), job.id).status == "ok"
    assert sup.mails[0].to == ("carol",)


def test_file_program_runs_in_order_and_bad_files_are_errors(sup: MemorySupervisor,
                                                             tmp_path: Path) -> None:
    job = sup.submit("j", status="running", user="dave")
    script = tmp_path / "cb.qcb"
    script.write_text("# two steps\nsuspend-self\n\nRESUME-SELF  # case-insensitive\n")
    rt = QcbRuntime(sup)
    event = Event(name="done", type="job", job=job.id)
    log = tmp_path / f"{job.id}.cb"
    result = rt.run(Invocation(callback="cb.qcb", path=script, job_id=job.id, event=event,
                               log_path=log))
    assert result.status == "ok"
    assert [a.action for a in sup.actions] == ["suspend", "resume"]
    assert "suspend-self: suspend job" in log.read_text()
    script.write_text("unblok-self\n")
    bad = rt.run(Invocation(callback="cb.qcb", path=script, job_id=job.id, event=event))
    assert bad.status == "error" and "unknown qcb command" in (bad.error or "")
    missing = rt.run(Invocation(callback="x.qcb", path=tmp_path / "x.qcb", job_id=job.id,
                                event=event))
    assert missing.status == "error" and "cannot read" in (missing.error or "")


class _SlowSupervisor(MemorySupervisor):
    def job_action(self, action: Any, job_id: int) -> bool:
        time.sleep(1.0)
        return super().job_action(action, job_id)


def test_the_deadline_holds_during_a_slow_command() -> None:
    sup = _SlowSupervisor()
    job = sup.submit("j", status="running")
    # Each action takes 1 s: the deadline passes during the second, so the run ends then and
    # the third never runs (the margins leave room for a loaded machine).
    result = run(QcbRuntime(sup), "suspend-self\nresume-self\nsuspend-self\n", job.id,
                 timeout=1.5)
    assert result.status == "timeout"
    assert "stopped at resume-self" in (result.error or "")
    end = time.monotonic() + 30
    while len(sup.actions) < 2 and time.monotonic() < end:  # the late one still lands
        time.sleep(0.05)
    assert [a.action for a in sup.actions] == ["suspend", "resume"]


class _BrokenSupervisor(MemorySupervisor):
    def job_action(self, action: Any, job_id: int) -> bool:
        raise RuntimeError("database is down")


def test_a_failing_supervisor_is_an_error_result_not_a_host_crash() -> None:
    sup = _BrokenSupervisor()
    job = sup.submit("j")
    result = run(QcbRuntime(sup), "kill-self", job.id)
    assert result.status == "error" and "database is down" in (result.error or "")


def test_run_without_a_supervisor_is_the_embedders_mistake() -> None:
    rt = QcbRuntime()
    with pytest.raises(NoSupervisor):
        run(rt, "kill-self", 1)
    sup = MemorySupervisor()
    job = sup.submit("j", status="running")
    rt.bind(sup)
    assert run(rt, "kill-self", job.id).status == "ok"


def test_license_and_full_reports_say_more_than_mail_status(sup: MemorySupervisor) -> None:
    job = sup.submit("shot", work={"1": "complete", "2": "running"}, subjobs=2, user="ann")
    sup.set_subjob_status(job.id, 1, "running")
    for command in ("mail-status", "mail-license-status", "mail-report-status"):
        assert run(QcbRuntime(sup), command, job.id).status == "ok"
    plain, licence, report = (m.body.splitlines() for m in sup.mails)
    assert "LICENSES_IN_USE: 1" in licence and "LICENSE: subjob 1 on unknown host" in licence
    assert not any(line.startswith(("WORK", "LICENSE")) for line in plain)
    assert {"WORK 1: complete", "WORK 2: running", "SUBJOB 0: pending",
            "SUBJOB 1: running"} <= set(report)
    assert not any(line.startswith("LICENSE") for line in report)
