"""Per-run overhead of each runtime and mode, beside a cold interpreter start in the same run.

For each runtime a trivial callback (one `qb.jobid()` call for Python and Perl, one
`block-self`/`unblock-self` command for qcb) runs many times after one warm-up run; the mean
and median wall time per run are printed next to the cost of starting `python -c pass` and
`perl -e 1` as fresh processes, with the ratio of the two.

    .venv/bin/python bench/runtimes.py [--runs N] [--cold N]

Targets: in-process Python and qcb in the tens of microseconds; isolated Python and Perl
through warm workers at least 5x faster than a cold process start, with the clean slate of
every run on (a fresh `qb` module and globals, and the process state put back afterwards;
there is no switch to turn it off).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, Runtime
from qbcallbacks.runtimes.perl import PerlRuntime
from qbcallbacks.runtimes.python import PythonRuntime
from qbcallbacks.runtimes.qcb import QcbRuntime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

#: (runs per runtime, cold starts) per bench/run mode.
SIZES = {"smoke": (50, 3), "quick": (500, 10), "full": (2000, 30)}


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def cold(argv: list[str], n: int) -> list[float]:
    def start() -> None:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                       env={"PATH": "/usr/bin:/bin"})

    return timed(start, n)


def runtime_costs(runtime: Runtime, invocation: Invocation, n: int) -> list[float]:
    first = runtime.run(invocation)  # warm-up: starts the worker, fills the caches
    assert first.status == "ok", first
    return timed(lambda: runtime.run(invocation), n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per runtime (2000)")
    parser.add_argument("--cold", type=int, default=None, help="cold process starts (30)")
    add_rows_option(parser)
    args = parser.parse_args(argv)
    runs, colds = SIZES[args.rows or "full"]
    args.runs, args.cold = args.runs or runs, args.cold or colds
    with report_to_stderr(args.rows is not None):
        rows = measure(args.runs, args.cold)
    if args.rows:
        emit(rows)
    return 0


def measure(runs: int, colds: int) -> list[dict[str, object]]:
    """Print the table; rows: each runtime's median run against a cold start."""
    args = argparse.Namespace(runs=runs, cold=colds)

    sup = MemorySupervisor()
    job = sup.submit("bench", status="running")
    event = Event(name="done", type="job", job=job.id)
    work = Path(tempfile.mkdtemp(prefix="qbcb-bench-"))
    scripts = {"py": work / "cb.py", "pl": work / "cb.pl", "qcb": work / "cb.qcb"}
    scripts["py"].write_text("import qb\nqb.jobid()\n")
    scripts["pl"].write_text("qb::jobid();\n")
    scripts["qcb"].write_text("block-self\nunblock-self\n")

    def inv(kind: str) -> Invocation:
        return Invocation(callback=scripts[kind].name, path=scripts[kind], job_id=job.id,
                          event=event, timeout=30)

    rows: list[tuple[str, list[float]]] = []
    cold_py = cold([sys.executable, "-c", "pass"], args.cold)
    rows.append(("cold: python -c pass", cold_py))
    perl = shutil.which("perl")
    cold_pl = cold([perl, "-e", "1"], args.cold) if perl else []
    if cold_pl:
        rows.append(("cold: perl -e 1", cold_pl))

    cases: list[tuple[str, Runtime, str]] = [
        ("python in-process", PythonRuntime(sup, mode="in-process", workdir=os.getcwd()), "py"),
        ("python isolated (warm worker)", PythonRuntime(sup, workdir=work, pool_size=1), "py"),
        ("qcb (2 commands)", QcbRuntime(sup), "qcb"),
    ]
    if perl:
        cases.append(("perl (warm worker)", PerlRuntime(sup, workdir=work, pool_size=1), "pl"))
    try:
        for label, runtime, kind in cases:
            rows.append((label, runtime_costs(runtime, inv(kind), args.runs)))
    finally:
        for _, runtime, _ in cases:
            runtime.close()
        shutil.rmtree(work, ignore_errors=True)
    # Cold starts again after the runs, so the baseline brackets them on a shared machine
    # whose load drifts.
    cold_py += cold([sys.executable, "-c", "pass"], args.cold)
    if perl and cold_pl:
        cold_pl += cold([perl, "-e", "1"], args.cold)

    base_py = statistics.median(cold_py)
    base_pl = statistics.median(cold_pl) if cold_pl else None
    print(f"{'case':32} {'runs':>6} {'mean us':>10} {'median us':>10} {'vs cold start':>15}")
    for label, costs in rows:
        median = statistics.median(costs)
        base = base_pl if "perl" in label and base_pl else base_py
        ratio = "" if label.startswith("cold") else f"{base / median:,.0f}x faster"
        print(f"{label:32} {len(costs):>6} {statistics.mean(costs) * 1e6:>10,.1f} "
              f"{median * 1e6:>10,.1f} {ratio:>15}")
    worst = [base_pl / statistics.median(c) if "perl" in label and base_pl
             else base_py / statistics.median(c)
             for label, c in rows if "warm worker" in label]
    print(f"warm workers vs cold start, worst case: {min(worst):,.1f}x (target: 5x)")
    out = []
    for label, costs in rows:
        if label.startswith("cold"):
            continue
        median = statistics.median(costs)
        perl_case = "perl" in label and base_pl
        base = base_pl if perl_case else base_py
        warm = "warm worker" in label
        out.append(row(f"runtime, {label}, per run", f"{median * 1e6:,.0f} us",
                       f"{base * 1e3:.0f} ms {'perl -e 1' if perl_case else 'python -c pass'}",
                       base / median, ">= 5x faster" if warm else "", base / median >= 5
                       if warm else None))
    return out


if __name__ == "__main__":
    sys.exit(main())
