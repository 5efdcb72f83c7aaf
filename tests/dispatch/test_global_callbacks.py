"""Global callbacks through the Python API: no job, once per occurrence even while no job is
live, kept in the trail across restarts without firing an instant twice, off unless the site
allows them, and refused with the reason (which the trail keeps)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qbcallbacks import Dispatcher, DispatcherSettings
from qbcallbacks.errors import GlobalCallbackError
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.model.events import Event, Job
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import write_dir

ALLOWED = DispatcherSettings(allow_global_callbacks=True)
REPORT = "import qb\nprint('job', qb.jobid())\n"


def make(tmp_path: Path, clock: ManualClock, settings: DispatcherSettings = ALLOWED,
         sup: MemorySupervisor | None = None) -> Dispatcher:
    root = tmp_path / "cb"
    root.mkdir(exist_ok=True)
    (root / "callbacks.conf").write_text("")
    return Dispatcher([str(root)], sup or MemorySupervisor(), mode="in-process",
                      settings=settings, audit=tmp_path / "audit.db", clock=clock)


def global_runs(d: Dispatcher, session: int | None = None) -> list[tuple[str, str, str]]:
    return [(r.callback, r.event.format(), r.output) for r in d.audit.query()
            if r.callback.startswith("global:") and (session is None or r.session == session)]


def test_a_globaltime_callback_fires_once_with_no_job_and_once_with_three(
        tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    with make(tmp_path, clock) as d:
        first = d.submit_global("globaltime-1000100", language="python", code=REPORT)
        second = d.submit_global("globaltime-1000200", language="python", code=REPORT)
        assert [g.id for g in d.globals()] == [first, second]
        clock.set(from_qube(1_000_100))
        assert d.wait_idle(30)
        assert global_runs(d) == [(f"global:{first}", "dummy-globaltime-0-1000100", "job 0\n")]
        for job in (1, 2, 3):
            d.emit(Event(name="submit", type="job", job=job), Job(id=job))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_200))
        assert d.wait_idle(30)
        assert global_runs(d)[1:] == [(f"global:{second}", "dummy-globaltime-0-1000200",
                                       "job 0\n")]


def test_a_global_callback_survives_a_restart_without_firing_twice(tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    with make(tmp_path, clock) as d:
        once = d.submit_global("globaltime-1000050", language="python", code=REPORT)
        every = d.submit_global("globalrepeat-1000000-100", language="python", code=REPORT)
        clock.set(from_qube(1_000_060))
        assert d.wait_idle(30)
        assert sorted(c for c, _, _ in global_runs(d)) == [f"global:{once}", f"global:{every}"]
    clock.set(from_qube(1_000_090))  # restarted within the same period, past the one-shot
    with make(tmp_path, clock) as again:
        assert [g.id for g in again.globals()] == [once, every]
        assert again.wait_idle(30)
        assert global_runs(again, again.session) == []
        clock.set(from_qube(1_000_100))  # the repeat's next instant fires it once
        assert again.wait_idle(30)
        assert [c for c, _, _ in global_runs(again, again.session)] == [f"global:{every}"]


def test_refused_when_the_site_does_not_allow_them_and_the_refusal_is_audited(
        tmp_path: Path) -> None:
    clock = ManualClock(start=from_qube(1_000_000))
    with make(tmp_path, clock, settings=DispatcherSettings()) as d:
        with pytest.raises(GlobalCallbackError, match="global callbacks are off on this site"):
            d.submit_global("globaltime-1000100", language="python", code=REPORT)
        assert d.globals() == ()
        [row] = d.audit.global_callbacks().rows()
        assert (row.state, row.trigger) == ("refused", "globaltime-1000100")
        assert row.reason is not None and "supervisor_global_callbacks" in row.reason


@pytest.mark.parametrize(("trigger", "language", "code", "words"), [
    ("complete-job-self", "python", REPORT, "a global callback has no job"),
    ("done-job-parent", "python", REPORT, "a global callback has no job"),
    ("globaltime-", "python", REPORT, "is not valid"),
    ("global", "cobol", REPORT, "unknown language"),
    ("global", "qube", "kil-self\n", "the qcb code is not valid"),
])
def test_invalid_global_callbacks_are_refused_with_the_reason(
        tmp_path: Path, trigger: str, language: str, code: str, words: str) -> None:
    with make(tmp_path, ManualClock(start=from_qube(1_000_000))) as d:
        with pytest.raises(GlobalCallbackError, match=words):
            d.submit_global(trigger, language=language, code=code)
        assert d.globals() == ()
        assert [r.state for r in d.audit.global_callbacks().rows()] == ["refused"]


def test_a_global_run_has_no_job_and_job_actions_need_a_target(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    job = sup.submit("target", status="blocked")
    clock = ManualClock(start=from_qube(1_000_000))
    with make(tmp_path, clock, sup=sup) as d:
        d.submit_global("global", language="python",
                        code="import qb\nqb.unblock(qb.jobid())\n")
        d.submit_global("global", language="qube", code="unblock-self\n")
        d.submit_global("global", language="python",
                        code=f"import qb\nprint(qb.unblock({job.id}))\n")
        d.emit(Event(name="tick", type="global", job=0))
        assert d.wait_idle(30)
        records = [r for r in d.audit.query() if r.callback.startswith("global:")]
    by_name = {r.callback: r for r in records}
    implicit, qcb, explicit = (by_name[f"global:{i}"] for i in (1, 2, 3))
    assert implicit.status == "error" and "job 0 is no job" in (implicit.error or ""), implicit
    assert qcb.status == "error" and "has no job" in (qcb.error or qcb.output or "")
    assert (explicit.status, explicit.output) == ("ok", "True\n")
    assert sup.job_status(job.id) == "pending"


def test_remove_takes_a_global_callback_out_of_force(tmp_path: Path) -> None:
    with make(tmp_path, ManualClock(start=from_qube(1_000_000))) as d:
        gid = d.submit_global("global", language="python", code=REPORT)
        d.remove_global(gid)
        assert d.globals() == ()
        with pytest.raises(GlobalCallbackError, match=f"no global callback {gid}"):
            d.remove_global(gid)
        d.emit(Event(name="tick", type="global", job=0))
        assert d.wait_idle(30)
        assert global_runs(d) == []
        assert [r.state for r in d.audit.global_callbacks().rows()] == ["removed"]


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_a_perl_global_run_has_job_0_and_must_name_its_target(tmp_path: Path) -> None:
    sup = MemorySupervisor()
    job = sup.submit("target", status="blocked")
    with make(tmp_path, ManualClock(start=from_qube(1_000_000)), sup=sup) as d:
        implicit = d.submit_global("global", language="perl",
                                   code="print qb::jobid(), \"\\n\"; qb::unblock(qb::jobid());")
        explicit = d.submit_global("global", language="perl",
                                   code=f"print qb::unblock({job.id}) ? \"done\\n\" : \"no\\n\";")
        d.emit(Event(name="tick", type="global", job=0))
        assert d.wait_idle(30)
        by_name = {r.callback: r for r in d.audit.query()}
    first, second = by_name[f"global:{implicit}"], by_name[f"global:{explicit}"]
    assert (first.status, first.output) == ("error", "0\n")
    assert "job 0 is no job" in (first.error or "")
    assert (second.status, second.output) == ("ok", "done\n")



def test_a_global_on_an_instant_already_raised_fires_once_and_alone(tmp_path: Path) -> None:
    """Catch-up for each global callback: a past instant that a rule or an earlier global
    already raised still fires a newly submitted global at once, without raising it again
    for the universal rules."""
    root = tmp_path / "cb"
    write_dir(root, {"note.py": "globaltime-1000050", "tick.py": "globalrepeat-1000010-100"})
    for name in ("note.py", "tick.py"):
        (root / name).write_text(REPORT)
    clock = ManualClock(start=from_qube(1_000_000))
    with Dispatcher([str(root)], MemorySupervisor(), mode="in-process", settings=ALLOWED,
                    audit=tmp_path / "audit.db", clock=clock) as d:

        def runs(*names: str) -> tuple[int, ...]:
            found = [r.callback for r in d.audit.query()]
            return tuple(found.count(name) for name in names)

        d.emit(Event(name="submit", type="job", job=1), Job(id=1))
        assert d.wait_idle(30)
        clock.set(from_qube(1_000_060))  # the rules' instants, once for the live job
        assert d.wait_idle(30)
        assert runs("note.py", "tick.py") == (1, 1)
        once = d.submit_global("globaltime-1000050", language="python", code=REPORT)
        every = d.submit_global("globalrepeat-1000010-100", language="python", code=REPORT)
        fresh = d.submit_global("globaltime-1000055", language="python", code=REPORT)
        clock.set(from_qube(1_000_061))  # the fresh instant is raised here by the timer
        assert d.wait_idle(30)
        twin = d.submit_global("globaltime-1000055", language="python", code=REPORT)
        clock.set(from_qube(1_000_062))
        assert d.wait_idle(30)
        ids = [f"global:{i}" for i in (once, every, fresh, twin)]
        assert runs("note.py", "tick.py", *ids) == (1, 1, 1, 1, 1, 1)
        clock.set(from_qube(1_000_110))  # the repeat's next instant: each once more
        assert d.wait_idle(30)
        assert runs("note.py", "tick.py", *ids) == (1, 2, 1, 2, 1, 1)
