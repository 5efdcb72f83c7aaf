"""Celery workers against local pools: firings per second, per-run overhead, emit-to-start.

Starts a private RabbitMQ broker and one, two, then three real `celery -A qbcallbacks.celery
worker` processes (prefork, concurrency 1 each) on this machine, and runs the same Python
callbacks (sleeping 10 ms or 100 ms) through a dispatcher with the local executor (its
default pools: 4 Python workers) and with the Celery executor, in one run. Prints:

- firings per second for each executor and callback length (many jobs, 4 firings each, so
  per-job order allows parallel runs);
- the per-run overhead Celery adds: one run at a time, a Celery worker against a local pool
  of one, the difference per firing;
- emit-to-run-start latency (p50, p99) on an idle system: one event at a time;
- the dispatcher's own CPU per remote firing (what bounds one dispatcher, however many
  workers it feeds).

    .venv/bin/python bench/distributed.py [--firings N] [--samples N] [--rows smoke|quick|full]

Needs Debian's rabbitmq-server and the `celery` extra. Figures on a 2-core machine shared
with other work: the worker processes compete with the dispatcher and the broker for them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _rows import add_rows_option, emit, report_to_stderr
from _rows import row as table_row

from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.dispatch.executor import Executor
from qbcallbacks.dispatch.remote.executor import CeleryExecutor
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from support.rabbitmq import CeleryWorkers, private_rabbitmq

MakeExecutor = Callable[[], Executor | None]
#: (firings per 10 ms run, serial runs, worker process counts) per bench/run mode.
SIZES = {"smoke": (8, 3, (1,)), "quick": (40, 10, (1, 3)), "full": (160, 30, (1, 2, 3))}
LOCAL = "local (4 Python workers)"


def callback_dir(root: Path, ms: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sleep.py").write_text(f"import time\ntime.sleep({ms / 1000!r})\n")
    (root / "callbacks.conf").write_text("sleep.py = complete-work-self-*\n")
    return root


def open_dispatcher(tmp: Path, ms: int, executor: Executor | None,
                    settings: DispatcherSettings) -> Dispatcher:
    return Dispatcher([str(callback_dir(tmp / "cb", ms))], MemorySupervisor(),
                      settings=settings, audit=tmp / "audit.db", executor=executor)


def throughput(make: MakeExecutor, ms: int, firings: int, settings: DispatcherSettings,
               ) -> tuple[float, float]:
    """Firings per second (many jobs of 4 firings each, from the first emit to idle), and
    this process's CPU seconds per firing (the dispatcher's cost, workers excluded when
    they are other processes)."""
    with tempfile.TemporaryDirectory() as tmp, \
            open_dispatcher(Path(tmp), ms, make(), settings) as d:
        for job in range(1, 5):  # warm the runtimes (and every worker) first
            d.emit(Event(name="complete", type="work", job=10_000 + job, extra="0"))
        assert d.wait_idle(300)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(firings):
            d.emit(Event(name="complete", type="work", job=1 + i // 4, extra=str(i % 4)))
        assert d.wait_idle(600)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        bad = [r for r in d.audit.query() if r.status != "ok"]
        assert not bad, bad[:3]
    return firings / elapsed, cpu / firings


def serial(make: MakeExecutor, ms: int, samples: int, settings: DispatcherSettings,
           ) -> tuple[float, list[float]]:
    """One event at a time on an idle system: seconds per firing, and each run's
    emit-to-start latency (the worker's start time, same clock on one machine)."""
    with tempfile.TemporaryDirectory() as tmp, \
            open_dispatcher(Path(tmp), ms, make(), settings) as d:
        d.emit(Event(name="complete", type="work", job=99_999, extra="0"))
        assert d.wait_idle(300)
        emitted: dict[int, float] = {}
        start = time.perf_counter()
        for i in range(1, samples + 1):
            emitted[i] = time.time()
            d.emit(Event(name="complete", type="work", job=i, extra="0"))
            assert d.wait_idle(300)
        per_run = (time.perf_counter() - start) / samples
        latency = [r.started_at - emitted[r.job] for r in d.audit.query()
                   if r.job in emitted and r.started_at is not None]
    return per_run, latency


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--firings", type=int, default=None, help="firings per 10 ms run (160)")
    parser.add_argument("--samples", type=int, default=None, help="serial runs for latency (30)")
    add_rows_option(parser)
    args = parser.parse_args()
    firings, samples, counts = SIZES[args.rows or "full"]
    with report_to_stderr(args.rows is not None):
        rows = measure(args.firings or firings, args.samples or samples, counts)
    if args.rows:
        emit(rows)


def measure(firings: int, samples: int, counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """Print the report; rows: the 100 ms rates against the local pools, the overhead Celery
    adds to one run, and the dispatcher's CPU per remote firing."""
    local = DispatcherSettings()
    one_local = DispatcherSettings(max_runs=1, per_runtime={"py": 1})
    rates: dict[str, dict[int, float]] = {LOCAL: {}}
    cpu: list[float] = []
    for ms in (10, 100):
        n = firings if ms == 10 else max(20, firings // 4)
        rates[LOCAL][ms] = throughput(lambda: None, ms, n, local)[0]
    local_serial, local_latency = serial(lambda: None, 10, samples, one_local)
    with private_rabbitmq() as broker, tempfile.TemporaryDirectory() as root:
        celery_serial = celery_latency = None
        for count in counts:
            workers = CeleryWorkers(broker, Path(root) / f"set{count}", count)
            try:
                def make(w: CeleryWorkers = workers) -> Executor:
                    return CeleryExecutor(w.broker, queue=w.queue)
                s = DispatcherSettings(executor="celery", broker=broker)
                row = rates.setdefault(f"celery, {count} worker process"
                                       + ("es" if count > 1 else ""), {})
                for ms in (10, 100):
                    n = firings if ms == 10 else max(20, firings // 4)
                    row[ms], per_firing = throughput(make, ms, n, s)
                    cpu.append(per_firing)
                if count == 1:
                    celery_serial, celery_latency = serial(make, 10, samples, s)
            finally:
                workers.stop()
    report(rates, local_serial, local_latency, celery_serial, celery_latency)
    print(f"dispatcher CPU per remote firing: median {statistics.median(cpu) * 1000:.2f} ms "
          f"(a ceiling of about {1 / statistics.median(cpu):.0f} firings/s per dispatcher core)")
    assert celery_serial is not None
    base = rates[LOCAL][100]
    return [*(table_row(f"{name}, 100 ms callbacks", f"{r[100]:.1f} firings/s",
                        f"{base:.1f} firings/s {LOCAL}", r[100] / base, "", None)
              for name, r in rates.items() if name != LOCAL),
            table_row("Celery's overhead, one 10 ms run at a time",
                      f"{celery_serial * 1000:.1f} ms a run",
                      f"{local_serial * 1000:.1f} ms a local pool of one",
                      celery_serial / local_serial, "", None),
            table_row("dispatcher CPU per remote firing", f"{statistics.median(cpu) * 1000:.2f} ms",
                      "", None, "", None)]


def report(rates: dict[str, dict[int, float]], local_serial: float,
           local_latency: list[float], celery_serial: float | None,
           celery_latency: list[float] | None) -> None:
    print(f"{'executor':32} {'10 ms firings/s':>16} {'100 ms firings/s':>17}")
    for name, row in rates.items():
        print(f"{name:32} {row[10]:16.1f} {row[100]:17.1f}")
    assert celery_serial is not None and celery_latency is not None
    print(f"\none run at a time, 10 ms callback: local pool of one {local_serial * 1000:.1f} "
          f"ms per firing, one Celery worker {celery_serial * 1000:.1f} ms per firing; "
          f"Celery adds {(celery_serial - local_serial) * 1000:.1f} ms per run")
    for name, values in (("local", local_latency), ("celery", celery_latency)):
        print(f"emit to run start, idle, {name:6}: p50 {statistics.median(values) * 1000:6.1f}"
              f" ms, p99 {pct(values, 0.99) * 1000:6.1f} ms ({len(values)} runs)")
    base = rates[LOCAL]
    for name, row in rates.items():
        if name.startswith("celery"):
            print(f"{name}: {row[10] / base[10]:.2f}x local at 10 ms, "
                  f"{row[100] / base[100]:.2f}x at 100 ms")


if __name__ == "__main__":
    main()
