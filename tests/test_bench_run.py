"""`bench/run --smoke` runs each benchmark in bench/ and prints its rows.

What is asserted is that each benchmark still runs and reports, never a timing: figures on a
shared machine swing too much to be a test, and they are the benchmarks' job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def benchmarks() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, str(BENCH / "run"), *args], capture_output=True,
                          text=True, timeout=900, check=False, env=env, cwd=ROOT)


def test_the_known_benchmarks_are_found() -> None:
    assert {"match", "parse", "startup"} <= set(benchmarks())


@pytest.mark.parametrize("name", benchmarks())
def test_each_benchmark_runs_and_prints_its_rows(name: str) -> None:
    """One benchmark a test, so that a parallel test run spreads them over its workers."""
    done = run("--smoke", "--only", name)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    table = done.stdout.splitlines()
    assert [c.strip() for c in table[0].split(" | ")] == [
        "bench", "what", "ours", "baseline", "ratio", "goal", "met"]
    assert "FAILED" not in done.stdout
    rows = [line for line in table[2:] if line.split(" | ")[0].strip() == name]
    assert rows, f"{name} printed no row:\n{done.stdout}"
    for line in rows:
        cells = [c.strip() for c in line.split(" | ")]
        assert cells[1] and cells[2], line  # what, and our figure
    assert "1 benchmark(s), smoke sizes" in done.stdout


def test_a_broken_benchmark_is_shown_failed(tmp_path: Path) -> None:
    """A benchmark that crashes, or prints no row, is a FAILED row and exit status 1."""
    (tmp_path / "crashes.py").write_text("raise SystemExit('this benchmark is broken')\n")
    (tmp_path / "silent.py").write_text("pass\n")
    (tmp_path / "_helper.py").write_text("raise SystemExit('not a benchmark')\n")
    done = run("--smoke", "--dir", str(tmp_path))
    assert done.returncode == 1
    rows = {line.split(" | ")[0].strip(): line for line in done.stdout.splitlines()[2:]
            if " | " in line}
    assert set(rows) == {"crashes", "silent"}
    assert "FAILED" in rows["crashes"] and "this benchmark is broken" in rows["crashes"]
    assert "FAILED" in rows["silent"] and "printed no row" in rows["silent"]
