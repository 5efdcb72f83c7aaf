"""Job-specific Python and Perl callbacks run only where the site enabled them."""

from __future__ import annotations

from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.policy import job_code_refusal
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir


def ev(name: str, job: int) -> Event:
    return Event(name=name, type="job", job=job)


JOB = Job(id=9, callbacks=(
    JobCallback(triggers="complete-job-self", language="python", code="print('py')"),
    JobCallback(triggers="complete-job-self", language="perl", code="print 1;"),
    JobCallback(triggers="complete-job-self", language="qube", code="unblock-self"),
    JobCallback(triggers="complete-job-self", language="mail", code=""),
))


def run_job(d: Dispatcher) -> None:
    with d:
        d.emit(ev("submit", 9), JOB)
        d.emit(ev("complete", 9))
        assert d.wait_idle(10)


def test_job_code_is_refused_by_default_and_recorded(tmp_path) -> None:
    root = write_dir(tmp_path / "cb", {"a.py": "complete-job-self"})
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=tmp_path / "audit.db")
    run_job(d)
    ran = sorted(c.callback for c in rt.calls)
    assert ran == ["a.py", "job:9#2", "job:9#3"]  # the universal script, qcb and mail
    records = {r.callback: r for r in d.audit.query()}
    for name in ("job:9#0", "job:9#1"):
        assert records[name].status == "refused"
        assert "job-specific" in (records[name].error or "")
        assert "supervisor_job_callback_code" in (records[name].error or "")
    assert {records[n].status for n in ("a.py", "job:9#2", "job:9#3")} == {"ok"}


def test_a_site_setting_enables_job_code(tmp_path) -> None:
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    rt = RecordingRuntime()
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   settings=DispatcherSettings(allow_job_code=True), audit=tmp_path / "audit.db")
    run_job(d)
    assert len(rt.calls) == 5
    assert all(r.status == "ok" for r in d.audit.query())


def test_qbconf_enables_job_code(tmp_path) -> None:
    qbdir = tmp_path / "qube"
    write_dir(qbdir / "callback", {"a.qcb": "complete-job-self"})
    path = tmp_path / "qb.conf"
    path.write_text("supervisor_job_callback_code = true\n")
    rt = RecordingRuntime()
    d = Dispatcher.from_qbconf(path, MemorySupervisor(), runtimes=runtimes(rt),
                               settings=DispatcherSettings(timeout=5),
                               audit=tmp_path / "audit.db", env={"QBDIR": str(qbdir)})
    assert d.settings.allow_job_code and d.settings.timeout == 5
    run_job(d)
    assert len(rt.calls) == 5


def test_the_policy_never_gates_universal_scripts() -> None:
    assert job_code_refusal("python", job_specific=False, allowed=False) is None
    assert job_code_refusal("mail", job_specific=True, allowed=False) is None
    assert job_code_refusal("perl", job_specific=True, allowed=True) is None
    assert job_code_refusal("sh", job_specific=True, allowed=False) is not None
