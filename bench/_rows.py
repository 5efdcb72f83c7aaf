"""The convention by which a benchmark hands its figures to `bench/run`.

A benchmark is any `bench/*.py` whose name does not start with `_`. Called with
`--rows smoke|quick|full`, it runs at that size and prints, on standard output, one JSON object
per line and nothing else: the rows of the summary table (its usual report goes to standard
error). Smoke sizes only prove that the benchmark still works; quick sizes give figures worth
reading in well under a minute; full sizes are the ones the README quotes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

MODES = ("smoke", "quick", "full")


def add_rows_option(parser: argparse.ArgumentParser) -> None:
    """`--rows MODE`: run at MODE's size and print the rows for `bench/run`."""
    parser.add_argument("--rows", choices=MODES, default=None,
                        help="print the summary rows as JSON lines (for bench/run)")


def row(what: str, ours: str, baseline: str, ratio: float | None, goal: str,
        met: bool | None) -> dict[str, Any]:
    """One line of the table: `ratio` is the figure `goal` is stated in (None: no ratio), and
    `met` whether the goal holds in this run (None: the row states no goal)."""
    return {"what": what, "ours": ours, "baseline": baseline, "ratio": ratio, "goal": goal,
            "met": met}


@contextlib.contextmanager
def report_to_stderr(active: bool) -> Iterator[None]:
    """While rows are wanted, the benchmark's usual report goes to standard error, so that
    standard output carries the rows alone."""
    if not active:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit(rows: list[dict[str, Any]]) -> None:
    for item in rows:
        print(json.dumps(item), flush=True)
