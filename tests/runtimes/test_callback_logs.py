"""Per-job `.cb` logs are rotated at a size cap, so a flooding job costs a bounded amount."""

from __future__ import annotations

import os
from pathlib import Path

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.logs import append_log
from qbcallbacks.runtimes.python import PythonRuntime


def invocation(log: Path, n: int = 0) -> Invocation:
    return Invocation(callback=f"flood{n}.py", code="", job_id=7, log_path=log,
                      event=Event(name="complete", type="job", job=7))


def test_a_flooding_job_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "7.cb"
    cap, backups = 10_000, 2
    for n in range(300):
        append_log(invocation(log, n), RunResult(status="ok", output="x" * 2000 + "\n"),
                   cap=cap, backups=backups)
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["7.cb", "7.cb.1", "7.cb.2"]
    assert all(p.stat().st_size <= cap for p in log.parent.iterdir())
    assert "flood299.py" in log.read_text()
    assert "flood299.py" not in (log.parent / "7.cb.1").read_text()


def test_one_huge_entry_is_cut_at_the_cap(tmp_path: Path) -> None:
    log = tmp_path / "7.cb"
    append_log(invocation(log), RunResult(status="ok", output="y" * 50_000), cap=4096)
    assert log.stat().st_size <= 4096
    assert log.read_text().endswith("[entry cut at the log size cap]\n")


def test_a_planted_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep\n")
    log = tmp_path / "7.cb"
    log.symlink_to(target)
    append_log(invocation(log), RunResult(status="ok", output="z\n"))
    assert target.read_text() == "keep\n"


def test_runtime_settings_carry_the_cap(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "7.cb"
    sup = MemorySupervisor()
    with PythonRuntime(sup, mode="in-process", log_cap=2048, log_backups=1) as rt:
        for _ in range(20):
            rt.run(Invocation(callback="p.py", code="print('w' * 500)", job_id=7, log_path=log,
                              event=Event(name="complete", type="job", job=7)))
    sizes = [os.path.getsize(p) for p in tmp_path.glob("7.cb*")]
    assert len(sizes) == 2 and all(s <= 2048 for s in sizes)
