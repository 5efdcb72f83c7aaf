"""A qcb script is checked once per text: edits are seen at once, bad files are refused fast,
and what is kept stays bounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.model.limits import default_limits
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from qbcallbacks.runtimes.qcb import QcbRuntime
from qbcallbacks.runtimes.scripts import ProgramCache, ScriptRefused, read_script


@pytest.fixture
def sup() -> MemorySupervisor:
    return MemorySupervisor(first_id=3)


def run_file(rt: QcbRuntime, path: Path, job: int) -> RunResult:
    return rt.run(Invocation(callback=path.name, path=path, job_id=job,
                             event=Event(name="done", type="job", job=job)))


def run_in_thread(rt: QcbRuntime, path: Path, job: int) -> RunResult:
    """The run's result; fails the test instead of hanging if the run blocks."""
    results: list[RunResult] = []
    thread = threading.Thread(target=lambda: results.append(run_file(rt, path, job)),
                              daemon=True)
    thread.start()
    thread.join(60)
    assert results, "the run blocked"
    return results[0]


def test_an_edit_in_place_with_the_same_size_and_mtime_runs_the_new_text(
        sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.qcb"
    script.write_text("suspend-self\n")
    rt = QcbRuntime(sup)
    assert run_file(rt, script, job.id).status == "ok"
    assert sup.job_status(job.id) == "suspended"
    stamp = os.stat(script)
    with open(script, "r+b") as fh:  # same inode, same size, and the old mtime put back
        fh.write(b"resume-self\n "[:stamp.st_size])
    os.utime(script, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after = os.stat(script)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        stamp.st_size, stamp.st_mtime_ns, stamp.st_ino)
    result = run_file(rt, script, job.id)
    assert result.status == "ok", result
    assert sup.job_status(job.id) == "pending"
    assert [a.action for a in sup.actions] == ["suspend", "resume"]


def test_a_script_replaced_by_a_fifo_is_refused_at_once(sup: MemorySupervisor,
                                                        tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.qcb"
    script.write_text("suspend-self\n")
    rt = QcbRuntime(sup)
    assert run_file(rt, script, job.id).status == "ok"
    script.unlink()
    os.mkfifo(script)  # nobody ever writes to it: reading it would block for good
    result = run_in_thread(rt, script, job.id)
    assert result.status == "error"
    assert "FIFO" in (result.error or "") and "not a regular file" in (result.error or "")
    assert [a.action for a in sup.actions] == ["suspend"]


def test_a_huge_script_is_refused_without_reading_it(sup: MemorySupervisor,
                                                     tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.qcb"
    script.write_text("suspend-self\n")
    with open(script, "ab") as fh:  # sparse: 4 GiB that would take long to read and check
        fh.truncate(4 << 30)
    result = run_in_thread(QcbRuntime(sup), script, job.id)
    assert result.status == "error"
    limit = default_limits().max_qcb_bytes
    assert f"over the limit of {limit} bytes" in (result.error or "")
    assert sup.actions == []


def test_a_script_removed_between_runs_fails_that_run_and_is_forgotten(
        sup: MemorySupervisor, tmp_path: Path) -> None:
    job = sup.submit("j", status="running")
    script = tmp_path / "cb.qcb"
    script.write_text("suspend-self\n")
    rt = QcbRuntime(sup)
    assert run_file(rt, script, job.id).status == "ok"
    assert str(script) in rt._files
    script.unlink()
    result = run_file(rt, script, job.id)
    assert result.status == "error"
    assert "cannot read the script" in (result.error or "")
    assert "No such file" in (result.error or "")
    assert str(script) not in rt._files
    script.write_text("resume-self\n")  # put back: it runs again, from the new text
    assert run_file(rt, script, job.id).status == "ok"
    assert [a.action for a in sup.actions] == ["suspend", "resume"]


def test_read_script_takes_only_regular_files_within_the_limit(tmp_path: Path) -> None:
    script = tmp_path / "cb.qcb"
    script.write_bytes(b"x" * 100)
    assert read_script(str(script), 100) == b"x" * 100
    with pytest.raises(ScriptRefused, match="100 bytes, over the limit of 99 bytes"):
        read_script(str(script), 99)
    with pytest.raises(ScriptRefused, match="a directory"):
        read_script(str(tmp_path), 100)
    with pytest.raises(FileNotFoundError):
        read_script(str(tmp_path / "missing.qcb"), 100)


class Builds:
    """A build function that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, key: str, source: bytes | str) -> str:
        self.calls.append(key)
        return f"program of {source!r}"


def test_a_hit_needs_the_same_text_and_builds_nothing() -> None:
    build = Builds()
    cache: ProgramCache[str] = ProgramCache(build)
    assert cache.get("a", b"one") == "program of b'one'"
    assert cache.get("a", b"one") == "program of b'one'"
    assert build.calls == ["a"]
    assert cache.get("a", b"two") == "program of b'two'"  # new text, same key: rebuilt
    assert build.calls == ["a", "a"]
    assert len(cache) == 1 and cache.size == 3  # the old text is not kept beside the new


def test_the_cache_is_bounded_by_count_and_by_bytes() -> None:
    build = Builds()
    cache: ProgramCache[str] = ProgramCache(build, max_entries=3, max_bytes=10)
    for key in "abc":
        cache.get(key, b"12")
    cache.get("a", b"12")  # a is now the most recently used
    cache.get("d", b"12")  # over the count: b, the least recently used, goes
    assert cache.keys() == ["c", "a", "d"]
    cache.get("e", b"1234567")  # over the bytes: the oldest go until it fits
    assert cache.keys() == ["d", "e"] and cache.size == 9
    cache.get("huge", b"x" * 11)  # larger than the whole cache: built, never kept
    assert cache.keys() == ["d", "e"] and build.calls[-1] == "huge"


def test_entries_no_run_asks_for_expire() -> None:
    """After a reload drops a script, its entry does not stay: unused ones age out."""
    now = [0.0]
    build = Builds()
    cache: ProgramCache[str] = ProgramCache(build, max_idle=60.0, clock=lambda: now[0])
    cache.get("dropped.qcb", b"old")
    cache.get("kept.qcb", b"text")
    for _ in range(3):
        now[0] += 40.0
        cache.get("kept.qcb", b"text")
    assert cache.keys() == ["kept.qcb"] and cache.size == 4
    cache.forget("kept.qcb")
    assert cache.keys() == [] and cache.size == 0
