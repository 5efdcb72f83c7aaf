"""Cold start of `qbcallbacks check` against importing its three libraries.

`check` is what pre-commit hooks and editors run on every save, so its start-up is what an
administrator feels. The baseline is a bare `python -c "import lark, pydantic, click"` in the
same run: what importing those libraries costs. The goal is at most 1.5x. A third line shows
the floor under the baseline: `import pydantic` alone loads almost nothing, and declaring a
single model class loads the rest of pydantic, which any checker whose data are pydantic
models pays before reading a byte.

An installed package has its bytecode compiled (pip does it), so the warm-up run writes it
even when PYTHONDONTWRITEBYTECODE is set; otherwise the package would be compiled from source
on every run while the libraries of the baseline would not. The commands are timed in turns,
one run of each per round, so that a busy machine slows them alike.

    python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "callback"
FLOOR = """import lark, pydantic, click
class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, defer_build=True)
    name: str = ""
"""


def cold(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one fresh process."""
    start = time.perf_counter()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import lark, pydantic, click (baseline)": [py, "-c", "import lark, pydantic, click"],
        "the same + one pydantic model class": [py, "-c", FLOOR],
        "import qbcallbacks": [py, "-c", "import qbcallbacks"],
        "qbcallbacks check examples/callback": [py, "-m", "qbcallbacks", "check", str(EXAMPLES)],
    }
    writing = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for argv in cases.values():  # warm the OS file cache and the bytecode caches once
        cold(argv, writing)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, argv in cases.items():
            times[name].append(cold(argv))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["import lark, pydantic, click (baseline)"]
    print(f"{'command':<42} {'median ms':>10} {'vs baseline':>12}")
    for name, value in medians.items():
        print(f"{name:<42} {value * 1000:>10.1f} {value / base:>11.2f}x")


if __name__ == "__main__":
    main()
