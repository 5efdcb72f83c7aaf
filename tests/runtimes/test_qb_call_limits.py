"""A `qb` call is bounded by the process's limits (spec/limits.md) in every runtime: the
environment's `QBCALLBACKS_MAX_QB_ARGS` and `QBCALLBACKS_MAX_QB_ARG_SIZE` reach the script's
side as they reach the host's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbcallbacks.model.events import Event
from qbcallbacks.model.limits import default_limits
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, Runtime
from qbcallbacks.runtimes.perl import PerlRuntime
from qbcallbacks.runtimes.python import PythonRuntime

PY = """
for args in ((['-id', qb.jobid()] * 3), ['-id', 'x' * 11]):
    try:
        qb.jobinfo(*args)
        print('answered')
    except qb.QbError as exc:
        print(exc)
"""
PL = """
for my $args ([('-id', qb::jobid()) x 3], ['-id', 'x' x 11]) {
    eval { qb::jobinfo(@$args); print "answered\\n"; 1 } or print $@;
}
"""


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QBCALLBACKS_MAX_QB_ARGS", "4")
    monkeypatch.setenv("QBCALLBACKS_MAX_QB_ARG_SIZE", "10")
    default_limits.cache_clear()
    yield
    monkeypatch.undo()
    default_limits.cache_clear()


def runtimes(sup: MemorySupervisor) -> list[tuple[Runtime, str, str]]:
    found: list[tuple[Runtime, str, str]] = [
        (PythonRuntime(sup, mode="in-process"), PY, "cb.py"),
        (PythonRuntime(sup, pool_size=1), PY, "cb.py"),
    ]
    if shutil.which("perl"):
        found.append((PerlRuntime(sup, pool_size=1), PL, "cb.pl"))
    return found


def test_the_environments_limits_bound_qb_calls_in_every_runtime(small_limits: None) -> None:
    sup = MemorySupervisor()
    job = sup.submit("j")
    for runtime, code, name in runtimes(sup):
        with runtime:
            result = runtime.run(Invocation(callback=name, code=code, job_id=job.id,
                                            event=Event(name="submit", type="job", job=job.id)))
        lines = [line.removeprefix("qb::") for line in result.output.splitlines()]
        assert lines == ["jobinfo: 6 arguments, over the limit of 4 [QCB016]",
                         "jobinfo: argument 2 has size 11, over the limit of 10 [QCB017]"], name
