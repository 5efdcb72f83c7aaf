"""Benchmark: parsing a callbacks.conf, ours against the standard library's configparser.

Run: `.venv/bin/python bench/parse.py [--lines N] [--repeat R]`. Both parse the same text in the
same run (configparser's copy gets the `[section]` header it requires); the best of R runs is
printed, with the ratio. Every run of ours starts with the trigger cache empty, as a process
that reads the file once does: a warm cache would flatter any file with fewer distinct
triggers than the cache holds. Two texts: a realistic one (file names all different, triggers
drawn from ~700 texts, as sites repeat the same triggers), and a worst case where every
trigger text is different. The goal: at least 0.8x configparser's speed on both.

What is timed is the public `parse_config`, document of models and all (not the loader's
`scan_config`, whose rows keep each trigger as a plain row until a rule is made of it).
"""

from __future__ import annotations

import argparse
import configparser
import random
import sys
import time
from pathlib import Path

from qbcallbacks.lang import parse_config
from qbcallbacks.lang.trigger import clear_cache

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

SHAPES = [
    "done-job-self", "failed-job-self", "submit-job-self", "complete-work-self-*",
    "complete-work-render-{k}", "running-job-{k}", "done-job-L{k}", "failed-work-self-f{k}",
    "complete-job-self && complete-job-parent",
    "(complete-work-ribgen-{k} && complete-work-render-{k}) || complete-work-composite-{k}",
]
GOAL = 0.8
#: (lines, repeats) per bench/run mode.
SIZES = {"smoke": (1_000, 1), "quick": (10_000, 3), "full": (10_000, 9)}


def make_text(lines: int, distinct: int | None, seed: int = 3) -> str:
    """`lines` rule lines (plus a comment every 50); trigger parameters drawn from `distinct`
    values, or all different when None."""
    rng = random.Random(seed)
    out = ["# generated callbacks.conf"]
    for i in range(lines):
        if i % 50 == 0:
            out.append(f"# group {i // 50}")
        shape = SHAPES[rng.randrange(len(SHAPES))]
        k = i if distinct is None else rng.randrange(distinct)
        ext = ("py", "pl", "qcb")[i % 3]
        out.append(f"cb{i}.{ext} = {shape.format(k=k)}")
    return "\n".join(out) + "\n"


def best_of(repeat: int, fn: object, before: object = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()  # type: ignore[operator]
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def ours(text: str) -> None:
    parsed = parse_config(text)
    assert parsed.ok, parsed.diagnostics[:3]


def theirs(text: str) -> None:
    parser = configparser.ConfigParser(interpolation=None, strict=False,
                                       comment_prefixes=("#",), delimiters=("=",))
    parser.read_string("[callbacks]\n" + text)


def measure(lines: int, repeat: int) -> list[tuple[str, float, float]]:
    """(text, our best seconds, configparser's best seconds) for each of the two texts."""
    out = []
    for label, distinct in (("realistic (~700 texts)", 100), ("all triggers distinct", None)):
        text = make_text(lines, distinct)
        a = best_of(repeat, lambda text=text: ours(text), clear_cache)
        b = best_of(repeat, lambda text=text: theirs(text))
        out.append((label, a, b))
    return out


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--lines", type=int, default=None, help="rule lines (default 10,000)")
    cli.add_argument("--repeat", type=int, default=None, help="runs, best taken (default 9)")
    add_rows_option(cli)
    args = cli.parse_args()
    lines, repeat = SIZES[args.rows or "full"]
    lines, repeat = args.lines or lines, args.repeat or repeat
    with report_to_stderr(args.rows is not None):
        print(f"{lines} rule lines, best of {repeat}, trigger cache cleared before each run")
        print(f"{'text':<24} {'ours s':>8} {'configparser s':>15} {'speed vs configparser':>22}")
        results = measure(lines, repeat)
        for label, a, b in results:
            print(f"{label:<24} {a:8.3f} {b:15.3f} {b / a:21.2f}x")
    if args.rows:
        emit([row(f"parse {lines:,} lines, cold cache, {label}", f"{a * 1000:.0f} ms",
                  f"{b * 1000:.0f} ms configparser", b / a, f">= {GOAL}x (speed)", b / a >= GOAL)
              for label, a, b in results])


if __name__ == "__main__":
    main()
