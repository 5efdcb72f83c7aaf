"""The frame-by-frame dependency recipe, end to end on the in-memory supervisor.

A comp job waits with every frame blocked; each of its frames is unblocked by
`unblock-work-self` when the same-named frame of the job labelled `render` in its process
group completes. The real loader reads the rule, the compiled matcher decides the firings, the
qcb runtime runs them against the supervisor, whose state changes raise the next events.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qbcallbacks.config.load import load_callback_path
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.qcb import QcbRuntime
from support.paths import EXAMPLES

FRAMES = [str(n) for n in range(1, 6)]


def _farm(tmp_path: Path) -> tuple[MemorySupervisor, Matcher, int, int, Path]:
    root = tmp_path / "callback"
    root.mkdir()
    shutil.copy(EXAMPLES / "unblock-frame.qcb", root)
    (root / "callbacks.conf").write_text("unblock-frame.qcb = complete-work-render-*\n")
    loaded = load_callback_path([str(root)])
    assert loaded.ok, loaded.diagnostics
    matcher = Matcher(loaded.rules)
    sup = MemorySupervisor(first_id=500)
    render = sup.submit("shot_040_render", label="render", work=FRAMES)
    comp = sup.submit("shot_040_comp", label="comp", pgrp=render.id,
                      work={f: "blocked" for f in FRAMES})
    lone = sup.submit("unrelated", label="render", work={f: "blocked" for f in FRAMES})
    for job in sup.jobs():
        matcher.attach(job)
    assert lone.pgrp != render.pgrp
    return sup, matcher, render.id, comp.id, tmp_path / "logs"


def _pump(sup: MemorySupervisor, matcher: Matcher, runtime: QcbRuntime,
          logs: Path) -> list[tuple[int, Event, RunResult]]:
    """Feed every pending supervisor event to the matcher and run what fires, until quiet."""
    runs = []
    while events := sup.drain_events():
        for event in events:
            for firing in matcher.observe(event):
                assert firing.rule is not None
                result = runtime.run(Invocation(
                    callback=firing.rule.file, path=firing.rule.path, job_id=firing.job,
                    event=firing.event, timeout=5, log_path=logs / f"{firing.job}.cb"))
                runs.append((firing.job, firing.event, result))
    return runs


def test_frames_unblock_one_by_one_as_the_render_frames_complete(tmp_path: Path) -> None:
    sup, matcher, render, comp, logs = _farm(tmp_path)
    runtime = QcbRuntime(sup)
    assert _pump(sup, matcher, runtime, logs) == []  # submits fire nothing

    sup.set_work_status(render, "3", "running")
    assert _pump(sup, matcher, runtime, logs) == []  # running is not complete

    sup.set_work_status(render, "3", "complete")
    runs = _pump(sup, matcher, runtime, logs)
    assert all(result.status == "ok" for _, _, result in runs), runs
    # Every job of the process group has an instance of the rule (the render job's own run is
    # a no-op on its completed frame); the unrelated job in another group is untouched.
    assert sorted(job for job, _, _ in runs) == [render, comp]
    assert {sup.work_status(comp, f) for f in FRAMES if f != "3"} == {"blocked"}
    assert sup.work_status(comp, "3") == "pending"
    assert sup.work_status(render, "3") == "complete"

    for frame in ("1", "5"):
        sup.set_work_status(render, frame, "complete")
    _pump(sup, matcher, runtime, logs)
    assert [sup.work_status(comp, f) for f in FRAMES] == [
        "pending", "blocked", "pending", "blocked", "pending"]
    assert all(sup.work_status(comp + 1, f) == "blocked" for f in FRAMES)

    # A failed frame does not release its dependant; its later completion does.
    sup.set_work_status(render, "2", "failed")
    assert _pump(sup, matcher, runtime, logs) == []
    sup.set_work_status(render, "2", "complete")
    sup.set_work_status(render, "4", "complete")
    _pump(sup, matcher, runtime, logs)
    assert [sup.work_status(comp, f) for f in FRAMES] == ["pending"] * 5

    unblocks = [a for a in sup.actions if a.target == "work" and a.ok]
    assert [(a.job, a.item) for a in unblocks] == [
        (comp, "3"), (comp, "1"), (comp, "5"), (comp, "2"), (comp, "4")]
    log = (logs / f"{comp}.cb").read_text()
    assert log.count("unblock-frame.qcb on complete-work-") == 5
    assert f"unblock-work-self: unblock work '3' of job {comp}" in log


def test_the_same_recipe_written_in_python_for_the_original(tmp_path: Path) -> None:
    """The recipe as a site would write it for the original's Python `qb`, driven by hand."""
    from qbcallbacks.runtimes.python import PythonRuntime

    sup = MemorySupervisor(first_id=900)
    render = sup.submit("r", label="render", work=FRAMES)
    comp = sup.submit("c", label="comp", pgrp=render.id, work={f: "blocked" for f in FRAMES})
    code = 'qb.workunblock("%s:%s" % (qb.jobid(), qb.workid()))\n'
    with PythonRuntime(sup, workdir=tmp_path) as runtime:
        for frame in ("2", "4"):
            event = sup.set_work_status(render.id, frame, "complete")[0]
            result = runtime.run(Invocation(callback="unblock_frame.py", code=code,
                                            job_id=comp.id, event=event, timeout=10))
            assert result.status == "ok", result
    assert [sup.work_status(comp.id, f) for f in FRAMES] == [
        "blocked", "pending", "blocked", "pending", "blocked"]
