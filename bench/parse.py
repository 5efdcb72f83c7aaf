"""Benchmark: parsing a 100k-line callbacks.conf, ours against the standard library's configparser.

Run: `.venv/bin/python bench/parse.py [--lines N] [--repeat R]`. Both parse the same text in the
same run (configparser's copy gets the `[section]` header it requires); the best of R runs is
printed, with the ratio. Two texts: a realistic one (file names all different, triggers drawn
from ~700 texts, as sites repeat the same triggers), and a worst case where every
trigger text is different, so neither cache helps and only the lone-event fast path does.
"""

from __future__ import annotations

import argparse
import configparser
import random
import time

from qbcallbacks.lang import parse_config

SHAPES = [
    "done-job-self", "failed-job-self", "submit-job-self", "complete-work-self-*",
    "complete-work-render-{k}", "running-job-{k}", "done-job-L{k}", "failed-work-self-f{k}",
    "complete-job-self && complete-job-parent",
    "(complete-work-ribgen-{k} && complete-work-render-{k}) || complete-work-composite-{k}",
]


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


def best_of(repeat: int, fn: object) -> float:
    best = float("inf")
    for _ in range(repeat):
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


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--lines", type=int, default=100_000)
    cli.add_argument("--repeat", type=int, default=3)
    args = cli.parse_args()
    print(f"{args.lines} rule lines, best of {args.repeat}")
    print(f"{'text':<24} {'ours s':>8} {'configparser s':>15} {'speed vs configparser':>22}")
    for label, distinct in (("realistic (~700 texts)", 100), ("all triggers distinct", None)):
        text = make_text(args.lines, distinct)
        a = best_of(args.repeat, lambda text=text: ours(text))
        b = best_of(args.repeat, lambda text=text: theirs(text))
        print(f"{label:<24} {a:8.3f} {b:15.3f} {b / a:21.2f}x")


if __name__ == "__main__":
    main()
