"""Cold start of `qbcallbacks check` and `qbcallbacks --version`, against what a site runs.

`check` is what pre-commit hooks and editors run on every save, so its start-up is what an
administrator feels. Its baseline is `flake8` on a one-line file, in the same run: a Python
linter a site's pre-commit already runs; the goal is at most 1.0x. `--version` should cost
little more than starting Python: at most 2x `python -c pass`. For reference the table also
shows `python -c "import click"` (the one library a clean `check` imports: its data are plain
records, it needs neither lark nor pydantic) and `python -c "import pydantic, click"` with one
pydantic model class, which would be the floor of a `check` whose data were pydantic models.

An installed package has its bytecode compiled (pip does it), so the warm-up run writes it
even when PYTHONDONTWRITEBYTECODE is set; otherwise the package would be compiled from source
on every run while the libraries of the baseline would not. The commands are timed in turns,
one run of each per round, so that a busy machine slows them alike.

    python bench/startup.py [--runs N]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _rows import add_rows_option, emit, report_to_stderr, row  # noqa: E402 - after the path

EXAMPLES = ROOT / "examples" / "callback"
PYDANTIC_FLOOR = """import pydantic, click
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


def script(name: str) -> str:
    """A console script of this environment (where pip put ours), else one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed (pip install -e '.[dev]' installs it)")
    return found


RUNS = {"smoke": 2, "quick": 7, "full": 21}
CHECK = "qbcallbacks check examples/callback"
VERSION = "qbcallbacks --version"
FLAKE8 = "flake8 on a one-line file"
PASS = "python -c pass"


def medians(runs: int, lint_target: Path) -> dict[str, float]:
    py = sys.executable
    cases = {
        PASS: [py, "-c", "pass"],
        VERSION: [script("qbcallbacks"), "--version"],
        FLAKE8: [script("flake8"), str(lint_target)],
        CHECK: [script("qbcallbacks"), "check", str(EXAMPLES)],
        "import click": [py, "-c", "import click"],
        "import pydantic, click + one model class": [py, "-c", PYDANTIC_FLOOR],
        "import qbcallbacks": [py, "-c", "import qbcallbacks"],
    }
    writing = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for argv in cases.values():  # warm the OS file cache and the bytecode caches once
        cold(argv, writing)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(cold(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="rounds (default 21)")
    add_rows_option(parser)
    args = parser.parse_args()
    runs = args.runs or RUNS[args.rows or "full"]
    with report_to_stderr(args.rows is not None), tempfile.TemporaryDirectory() as tmp:
        lint_target = Path(tmp) / "one.py"
        lint_target.write_text("x = 1\n")
        found = medians(runs, lint_target)
        print(f"median of {runs} rounds")
        print(f"{'command':<42} {'median ms':>10} {'vs python -c pass':>18}")
        for name, value in found.items():
            print(f"{name:<42} {value * 1000:>10.1f} {value / found[PASS]:>17.2f}x")
    if args.rows:
        check, version = found[CHECK] / found[FLAKE8], found[VERSION] / found[PASS]
        emit([row(f"start-up, `{CHECK}`", f"{found[CHECK] * 1000:.0f} ms",
                  f"{found[FLAKE8] * 1000:.0f} ms {FLAKE8}", check, "<= 1.0x", check <= 1.0),
              row(f"start-up, `{VERSION}`", f"{found[VERSION] * 1000:.0f} ms",
                  f"{found[PASS] * 1000:.0f} ms {PASS}", version, "<= 2x", version <= 2.0)])


if __name__ == "__main__":
    main()
