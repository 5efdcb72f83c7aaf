"""Cold start of `qbcallbacks check` against importing its three libraries.

`check` is what pre-commit hooks and editors run on every save, so its start-up is what an
administrator feels. The baseline is a bare `python -c "import lark, pydantic, click"` in the
same run: the floor any checker built on those libraries pays. The goal is at most 1.5x.

    python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "callback"


def cold(argv: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` fresh processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import lark, pydantic, click (baseline)": [py, "-c", "import lark, pydantic, click"],
        "import qbcallbacks": [py, "-c", "import qbcallbacks"],
        "qbcallbacks check examples/callback": [py, "-m", "qbcallbacks", "check", str(EXAMPLES)],
    }
    for argv in cases.values():  # warm the OS file cache and the bytecode caches once
        cold(argv, 1)
    medians = {name: statistics.median(cold(argv, args.runs)) for name, argv in cases.items()}
    base = medians["import lark, pydantic, click (baseline)"]
    print(f"{'command':<42} {'median ms':>10} {'vs baseline':>12}")
    for name, value in medians.items():
        print(f"{name:<42} {value * 1000:>10.1f} {value / base:>11.2f}x")


if __name__ == "__main__":
    main()
