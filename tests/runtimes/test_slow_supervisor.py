"""A run's deadline holds whatever the supervisor does: an embedded dispatcher in isolated mode
whose supervisor does not answer `jobinfo` still ends the run `timeout` at its deadline, kills
the worker, and drops the answer that comes later.

No timing is asserted: the supervisor answers only once the test has seen the run recorded
as `timeout`, so a run that waited for the answer would never be recorded and the test would
fail at its (generous) wait instead.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from qbcallbacks import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event, Job
from qbcallbacks.reference.memory import MemorySupervisor

SCRIPTS = {
    "ask.py": "import os, qb\nprint('pid', os.getpid(), flush=True)\n"
              "qb.jobinfo('-id', qb.jobid())\nprint('answered')\n",
    "ask.pl": "print \"pid $$\\n\";\nmy @j = qb::jobinfo('-id', qb::jobid());\n"
              "print \"answered\\n\";\n",
}


class SlowSupervisor(MemorySupervisor):
    """Answers `jobinfo` only when the test releases it (or after a minute, to end anyway)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.asked = threading.Event()
        self.answered = threading.Event()

    def jobinfo(self, *args: Any, **kwargs: Any) -> Any:
        self.asked.set()
        self.release.wait(60)
        try:
            return super().jobinfo(*args, **kwargs)
        finally:
            self.answered.set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_deadline_holds_against_a_supervisor_that_does_not_answer(
        tmp_path: Path, script: str) -> None:
    if script.endswith(".pl") and shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    root = tmp_path / "cb"
    root.mkdir()
    (root / script).write_text(SCRIPTS[script])
    (root / "callbacks.conf").write_text(f"{script} = complete-job-self\n")
    sup = SlowSupervisor()
    job = sup.submit("slow")
    dispatcher = Dispatcher([str(root)], sup, mode="isolated", audit=tmp_path / "audit.db",
                            settings=DispatcherSettings(timeout=2))
    try:
        dispatcher.emit(Event(name="complete", type="job", job=job.id), Job(id=job.id))
        assert sup.asked.wait(60), "the callback never asked"
        assert dispatcher.wait_idle(60), "the run waited for the supervisor's answer"
        [record] = dispatcher.audit.query()
        assert record.status == "timeout", record
        assert "answered" not in (record.output or "")
        pid = int((record.output or "").split()[1])
        assert not sup.answered.is_set()  # it ended before the supervisor answered
        sup.release.set()
        assert sup.answered.wait(60)
        assert not _alive(pid)  # the worker was stopped at the deadline
        # The late answer went nowhere; the runtime still runs the next callback.
        sup.release.set()
        dispatcher.emit(Event(name="complete", type="job", job=job.id))
        assert dispatcher.wait_idle(60)
        last = dispatcher.audit.query()[-1]
        assert (last.status, "answered" in (last.output or "")) == ("ok", True), last
    finally:
        sup.release.set()
        dispatcher.close()


def test_a_qcb_run_ends_at_its_deadline_too(tmp_path: Path) -> None:
    """qcb commands run in the host: their supervisor calls are bounded by the deadline."""
    root = tmp_path / "cb"
    root.mkdir()
    (root / "status.qcb").write_text("mail-status\nunblock-self\n")
    (root / "callbacks.conf").write_text("status.qcb = complete-job-self\n")
    sup = SlowSupervisor()
    job = sup.submit("slow", status="blocked")
    dispatcher = Dispatcher([str(root)], sup, audit=tmp_path / "audit.db",
                            settings=DispatcherSettings(timeout=2))
    try:
        dispatcher.emit(Event(name="complete", type="job", job=job.id), Job(id=job.id))
        assert sup.asked.wait(60)
        assert dispatcher.wait_idle(60), "the qcb run waited for the supervisor's answer"
        [record] = dispatcher.audit.query()
        assert record.status == "timeout", record
        assert "stopped at mail-status" in (record.error or "")
        sup.release.set()
        assert sup.answered.wait(60)
        assert sup.job_status(job.id) == "blocked"  # the commands after it never ran
    finally:
        sup.release.set()
        dispatcher.close()
