"""Run every fuzz target for a bounded time; exit 1 on any finding, keeping the input.

    python fuzz/run.py                      # every target, 20 s each (CI)
    python fuzz/run.py --seconds 600 trigger  # one target, longer
    python fuzz/run.py --seed 0             # a new random walk (CI keeps --seed 1)

Each target starts from its checked-in seeds (fuzz/corpus/<target>/) plus a scratch corpus
that is thrown away, so a run never changes the repository except to save a finding under
fuzz/findings/<target>/ (crash-*, timeout-*, oom-*). A finding is an exception that is not a
QbCallbacksError, a disagreement (a failed assertion), an input slower than --timeout seconds
or a process over --rss-mb megabytes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("trigger", "config", "qcb", "events", "qbconf", "differential")


def run_target(name: str, seconds: int, timeout: int, rss_mb: int, seed: int) -> bool:
    """Fuzz one target; True when it ran its time without a finding."""
    findings = HERE / "findings" / name
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        command = [
            sys.executable, str(HERE / f"fuzz_{name}.py"),
            f"-max_total_time={seconds}", f"-timeout={timeout}", f"-rss_limit_mb={rss_mb}",
            "-max_len=4096", f"-artifact_prefix={findings}{os.sep}", "-print_final_stats=1",
            f"-seed={seed}",
            scratch, str(HERE / "corpus" / name),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=seconds + 120)
    tail = [ln for ln in done.stderr.splitlines() if ln.startswith(("#", "Done", "=="))][-3:]
    if done.returncode == 0:
        print(f"fuzz {name}: no finding ({'; '.join(tail[-1:])})")
        return True
    print(f"fuzz {name}: FINDING (exit {done.returncode}); input saved in {findings}")
    print(done.stderr[-4000:])
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (default all)")
    parser.add_argument("--seconds", type=int,
                        default=int(os.environ.get("FUZZ_SECONDS", "20")),
                        help="time per target (default 20, or $FUZZ_SECONDS)")
    parser.add_argument("--timeout", type=int, default=2, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=1024, help="memory limit of a target")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")),
                        help="libFuzzer's seed: 0 (default, or $FUZZ_SEED) draws a new one; a "
                             "fixed one repeats the same walk, as CI does")
    args = parser.parse_args(argv)
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    ok = True
    for name in args.targets or TARGETS:
        ok = run_target(name, args.seconds, args.timeout, args.rss_mb, args.seed) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
