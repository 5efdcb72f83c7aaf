"""How long the engine takes to give up, or to hand back: figures the tests no longer assert.

Each line prints a measured wall time beside the bound it is compared with, in the same run,
and their ratio:

- a Python (in-process and isolated) or Perl callback that spins for ever, against its
  timeout: how soon after the deadline the run is a `timeout` (ideal ratio 1.0x);
- `Dispatcher.emit` while every run is held, against a plain `queue.Queue.put` of the same
  event: what accepting an event costs the caller (the run itself is never waited for);
- `emit` into a full queue, against its `emit_timeout`: how long back pressure makes the
  caller wait before `BackPressureError` (ideal 1.0x: it waits the whole timeout, no more).

    .venv/bin/python bench/latency.py [--runs N] [--rows smoke|quick|full]

The goals are the bounds the tests once asserted: a hung run is a `timeout` within 2.5x its
timeout, `emit` returns within 50 ms while runs are held, and back pressure waits at least
0.8x its `emit_timeout` before it refuses.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _rows import add_rows_option, emit, report_to_stderr, row

from qbcallbacks import (
    BackPressureError,
    Dispatcher,
    DispatcherSettings,
    Event,
    Firing,
    Invocation,
    Job,
    MemorySupervisor,
    Runtime,
)
from qbcallbacks.dispatch.dispatcher import MatcherSource
from qbcallbacks.runtimes.perl import PerlRuntime
from qbcallbacks.runtimes.python import PythonRuntime
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir

RUNS = {"smoke": 1, "quick": 3, "full": 5}


def line(what: str, measured: list[float], bound: float, bound_name: str, goal: str,
         met: bool) -> dict[str, Any]:
    """Print one figure against its bound, and return it as a row of `bench/run`'s table."""
    median = statistics.median(measured)
    print(f"{what:<38} {median * 1000:9.2f} ms  {bound_name} {bound * 1000:9.2f} ms  "
          f"{median / bound:6.2f}x  (max {max(measured) * 1000:.2f} ms)")
    return row(what, _shown(median), f"{bound_name} {_shown(bound)}", round(median / bound, 2),
               goal, met)


def _shown(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.1f} ms"


def hang_to_timeout(runtime: Runtime, code: str, name: str, timeout: float,
                    runs: int) -> list[float]:
    """Wall seconds from starting a run that never ends to its `timeout` result."""
    sup = MemorySupervisor()
    job = sup.submit("j")
    event = Event(name="submit", type="job", job=job.id)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        result = runtime.run(Invocation(callback=name, code=code, job_id=job.id, event=event,
                                        timeout=timeout))
        out.append(time.perf_counter() - started)
        assert result.status == "timeout", result
    return out


@contextmanager
def held_dispatcher(settings: DispatcherSettings,
                    matcher: MatcherSource | None = None) -> Iterator[Dispatcher]:
    """A dispatcher over one qcb rule whose runs are all held until it closes."""
    tmp = Path(tempfile.mkdtemp(prefix="qbcallbacks-latency-"))
    rt = RecordingRuntime()
    rt.hold.clear()
    root = write_dir(tmp / "cb", {"a.qcb": "complete-job-self"})
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt), settings=settings,
                   audit=tmp / "audit.db", matcher=matcher)
    try:
        yield d
    finally:
        rt.hold.set()
        d.close()
        shutil.rmtree(tmp, ignore_errors=True)


def emit_latency(runs: int) -> tuple[list[float], list[float]]:
    """Seconds per `emit` with the runs held, and per `Queue.put` of the same event."""
    ours, base = [], []
    with held_dispatcher(DispatcherSettings()) as d:
        for job in range(1, runs + 1):
            event = Event(name="complete", type="job", job=job)
            started = time.perf_counter()
            d.emit(event)
            ours.append(time.perf_counter() - started)
    plain: queue.Queue[Event] = queue.Queue()
    for job in range(1, runs + 1):
        event = Event(name="complete", type="job", job=job)
        started = time.perf_counter()
        plain.put(event)
        base.append(time.perf_counter() - started)
    return ours, base


class Gate(MatcherSource):
    """The compiled matcher, holding the dispatcher's matching thread on its first event."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        self.entered.set()
        self.gate.wait(30)
        return super().observe(event, job)


def back_pressure_wait(emit_timeout: float, runs: int) -> list[float]:
    """Seconds `emit` into a full queue waits before it refuses the event."""
    out = []
    for _ in range(runs):
        gate = Gate()
        settings = DispatcherSettings(queue_size=1, emit_timeout=emit_timeout)
        with held_dispatcher(settings, matcher=gate) as d:
            d.emit(Event(name="complete", type="job", job=1))
            assert gate.entered.wait(30)
            d.emit(Event(name="complete", type="job", job=2))  # fills the queue
            started = time.perf_counter()
            try:
                d.emit(Event(name="complete", type="job", job=3))
            except BackPressureError:
                out.append(time.perf_counter() - started)
            finally:
                gate.gate.set()
    return out


def measure(runs: int) -> list[dict[str, Any]]:
    timeout = 0.5
    spin_py = "print('spinning')\nwhile True:\n    pass\n"
    rows = []
    for mode in ("in-process", "isolated"):
        with PythonRuntime(mode=mode, pool_size=1,  # type: ignore[arg-type]
                           supervisor=MemorySupervisor()) as py:
            took = hang_to_timeout(py, spin_py, "spin.py", timeout, runs)
            rows.append(line(f"python {mode}: hang -> timeout", took, timeout, "timeout",
                             "<= 2.5x", statistics.median(took) <= 2.5 * timeout))
    if shutil.which("perl"):
        with PerlRuntime(MemorySupervisor(), pool_size=1) as pl:
            took = hang_to_timeout(pl, "1 while 1;", "spin.pl", timeout, runs)
            rows.append(line("perl: hang -> timeout", took, timeout, "timeout", "<= 2.5x",
                             statistics.median(took) <= 2.5 * timeout))
    ours, base = emit_latency(runs * 200)
    rows.append(line("emit, every run held", ours, statistics.median(base), "Queue.put",
                     "<= 50 ms", statistics.median(ours) <= 0.05))
    emit_timeout = 0.05
    waited = back_pressure_wait(emit_timeout, runs)
    rows.append(line("emit into a full queue", waited, emit_timeout, "emit_timeout",
                     ">= 0.8x", statistics.median(waited) >= 0.8 * emit_timeout))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    add_rows_option(parser)
    args = parser.parse_args(argv)
    with report_to_stderr(args.rows is not None):
        rows = measure(RUNS[args.rows] if args.rows else args.runs)
    if args.rows:
        emit(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
