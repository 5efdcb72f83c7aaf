"""Benchmark: the compiled matcher against the reference evaluator, 10 to 100k rules.

Run: `.venv/bin/python bench/match.py [--quick] [--sizes N,...] [--max-reference N]`. Prints,
for each rule count, the median microseconds per event for events that fire nothing and for
events that fire, the mean number of firings of the latter, and (up to 10k rules, or
`--max-reference`) the reference evaluator's figures and the ratio.

Then the build: a callbacks.conf of 10k and of 100k such rules parsed (cold trigger cache),
turned into rules as the loader does, and compiled into a matcher; wall time, and (under
tracemalloc, a separate run) the memory the rules and the matcher hold and the peak. Goals:
100k rules in at most 1.5 s, 100k/10k at most 11x, at most 2 KB per rule and 250 MB peak.

Rules come in rough site proportions: mostly `self` atoms on user-defined events and on work
items with exact extras, some `*` extras, labels, parents, job ids and two-atom compounds. Each
rule has its own event name or item, so an event fires a handful of rules whatever the count,
which is what makes the growth from 10 to 100k rules a measure of lookup cost, not of firings.
1000 live jobs in process groups of 10 (labels L0..L9 in each group, the first job the parent
of the others).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from qbcallbacks.config.load import _models as loader_models
from qbcallbacks.lang import parse_trigger
from qbcallbacks.lang.config import scan_config
from qbcallbacks.lang.source import collector_paused
from qbcallbacks.lang.trigger import clear_cache
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.rules import Rule, make_rule

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _rows import add_rows_option, emit, report_to_stderr, row  # noqa: E402 - after the path

from support.reference_matcher import ReferenceMatcher  # noqa: E402 - after the path

JOBS = 1000
GROUP = 10


def trigger_for(i: int) -> str:
    """Rule i's trigger; the shares add up to 100."""
    slot = i % 20
    if slot < 9:                       # 45%: user-defined job event on self
        return f"evt{i}-job-self"
    if slot < 12:                      # 15%: a work item with an exact extra
        return f"complete-work-self-f{i}"
    if slot < 13:                      # 5%: any work item of a user-defined event
        return f"stage{i}-work-self-*"
    if slot < 15:                      # 10%: a label in the process group
        return f"ready{i}-job-L{i % GROUP}"
    if slot < 16:                      # 5%: the parent job
        return f"evt{i}-job-parent"
    if slot < 17:                      # 5%: a job id (jobs that are not live here)
        return f"running-job-{500000 + i}"
    return f"evt{i}-job-self && step{i}-work-self-*"  # 15%: compounds


def make_rules(count: int) -> list[Rule]:
    cache: dict[str, object] = {}
    rules = []
    for i in range(count):
        text = trigger_for(i)
        trig = cache.setdefault(text, parse_trigger(text))
        rules.append(make_rule("/site/callback", f"cb{i}.py", "python", trig, i + 1, 1, 1, i))
    return rules


def make_jobs() -> list[Job]:
    jobs = []
    for j in range(1, JOBS + 1):
        leader = (j - 1) // GROUP * GROUP + 1
        jobs.append(Job(id=j, pgrp=leader, label=f"L{(j - 1) % GROUP}",
                        pid=0 if j == leader else leader))
    return jobs


def make_events(count: int, rng: random.Random, n: int) -> tuple[list[Event], list[Event]]:
    """(events that fire nothing, events that fire), about live jobs."""
    def job() -> int:
        return rng.randint(1, JOBS)

    quiet, loud = [], []
    for _ in range(n):
        i = rng.randrange(count)
        kind = rng.randrange(4)
        if kind == 0:
            quiet.append(Event(name=f"evt{count + i}", type="job", job=job()))  # unknown name
        elif kind == 1:
            quiet.append(Event(name="complete", type="work", job=job(), extra=f"g{i}"))
        elif kind == 2:
            quiet.append(Event(name="running", type="job", job=job()))  # id atoms: other ids
        else:
            quiet.append(Event(name=f"ready{i}", type="work", job=job(), extra="1"))
        trig = trigger_for(i)
        head = trig.split(" ")[0]
        name, typ, ctx = head.split("-")[:3]
        if ctx == "self" and typ == "job":
            loud.append(Event(name=name, type="job", job=job()))
        elif ctx == "self":
            loud.append(Event(name=name, type="work", job=job(), extra=f"f{i}"))
        elif ctx == "parent":
            loud.append(Event(name=name, type="job", job=(job() - 1) // GROUP * GROUP + 1))
        elif ctx.startswith("L"):
            leader = (job() - 1) // GROUP * GROUP + 1
            loud.append(Event(name=name, type="job", job=leader + int(ctx[1:])))
    return quiet, loud


def conf_text(count: int) -> str:
    """A callbacks.conf of `count` rules with the benchmark's triggers."""
    exts = ("py", "pl", "qcb")
    return "".join(f"cb{i}.{exts[i % 3]} = {trigger_for(i)}\n" for i in range(count))


def build(text: str) -> Matcher:
    """Parse, make the rules as the loader does (it checks the scripts too), compile."""
    rows, diagnostics = scan_config(text)
    assert not diagnostics, diagnostics[:3]
    with collector_paused():  # as the loader builds its rules
        # The loader's own pass: a trigger read as a model passes through, and equal rows
        # share one model.
        models = loader_models([r.trigger for r in rows], {})
        rules = [make_rule("/site/callback", r.file, "python", m, r.line, r.file_column,
                           r.trigger_column, i)
                 for i, (r, m) in enumerate(zip(rows, models, strict=True))]
    del models, rows
    return Matcher(rules)


def build_seconds(text: str, repeat: int) -> tuple[float, float]:
    """The best (wall, CPU) seconds of `repeat` builds. The build is one thread, so on an idle
    machine the two agree; on a shared one the CPU time is what our code costs."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        clear_cache()
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        matcher = build(text)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        del matcher
    return best, best_cpu


def build_memory(text: str) -> tuple[float, float]:
    """(bytes held per rule once built, peak MB while building), text excluded."""
    clear_cache()
    gc.collect()
    tracemalloc.start()
    try:
        matcher = build(text)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held / len(matcher.rules), peak / 1e6


def build_rows(small: int, large: int, repeat: int, memory: int) -> list[dict[str, Any]]:
    """Rows: the build at `large` rules against `small`, and the memory at `memory` rules."""
    texts = {n: conf_text(n) for n in (small, large)}
    wall, cpu = {}, {}
    for n in (small, large):
        wall[n], cpu[n] = build_seconds(texts[n], repeat)
    ratio = cpu[large] / cpu[small]
    limit = 1.5 * large / 100_000
    print(f"parse + build: {small:,} rules {wall[small]:.2f} s (CPU {cpu[small]:.2f} s), "
          f"{large:,} rules {wall[large]:.2f} s (CPU {cpu[large]:.2f} s), {ratio:.1f}x")
    out = [row(f"parse + build {large:,} rules (CPU time)",
               f"{cpu[large]:.2f} s (wall {wall[large]:.2f} s)",
               f"{small:,} rules: {cpu[small]:.2f} s", ratio,
               f"<= {1.1 * large / small:g}x and <= {limit:g} s", ratio <= 1.1 * large / small
               and cpu[large] <= limit)]
    per_rule, peak = build_memory(texts.get(memory) or conf_text(memory))
    print(f"memory at {memory:,} rules: {per_rule:,.0f} bytes per rule held, peak {peak:.0f} MB")
    out.append(row(f"memory, {memory:,} rules built", f"{per_rule:,.0f} B/rule, peak "
                   f"{peak:.0f} MB", "", None,
                   f"<= 2 KB/rule, <= {250 * memory / 100_000:g} MB peak",
                   per_rule <= 2048 and peak <= 250 * memory / 100_000))
    return out


def per_event(observe: object, events: list[Event]) -> tuple[float, float]:
    """Median microseconds per event, and mean firings per event."""
    times, fired = [], 0
    clock = time.perf_counter_ns
    for event in events:
        start = clock()
        out = observe(event)  # type: ignore[operator]
        times.append(clock() - start)
        fired += len(out)
    return statistics.median(times) / 1000, fired / max(1, len(events))


#: Per bench/run mode: rule counts, events per kind, reference up to, build sizes and repeats,
#: and the rule count whose memory is measured.
MODES: dict[str, dict[str, Any]] = {
    "smoke": {"sizes": [10, 1_000], "events": 200, "reference": 10, "build": (1_000, 10_000),
              "repeat": 1, "memory": 10_000},
    "quick": {"sizes": [10, 1_000, 10_000], "events": 2_000, "reference": 10,
              "build": (10_000, 100_000), "repeat": 1, "memory": 10_000},
    "full": {"sizes": [10, 100, 1_000, 10_000, 100_000], "events": 20_000,
             "reference": 10_000, "build": (10_000, 100_000), "repeat": 3, "memory": 100_000},
}


def observe_rows(sizes: list[int], n: int, max_reference: int) -> list[dict[str, Any]]:
    """Print the per-event table; rows: the cost at the largest size against the smallest,
    and the compiled matcher against the reference at the largest size it runs."""
    rng = random.Random(7)
    jobs = make_jobs()
    print(f"{JOBS} live jobs; {n} events per kind; medians in microseconds per event")
    print(f"{'rules':>7} {'build s':>8} {'no-fire':>8} {'fire':>8} {'firings':>8} "
          f"{'us/firing':>9} {'ref no-fire':>12} {'ref fire':>10} {'ratio':>8}")
    cost: dict[int, tuple[float, float]] = {}
    versus: tuple[int, float, float] | None = None
    for count in sizes:
        rules = make_rules(count)
        start = time.perf_counter()
        matcher = Matcher(rules)
        for job in jobs:
            matcher.attach(job)
        built = time.perf_counter() - start
        quiet, loud = make_events(count, rng, n)
        q_us, _ = per_event(matcher.observe, quiet)
        l_us, l_fired = per_event(matcher.observe, loud)
        cost[count] = (q_us, l_us)
        per_firing = (l_us - q_us) / l_fired if l_fired else 0.0
        ref = ""
        if count <= max_reference:
            reference = ReferenceMatcher(rules)
            for job in jobs:
                reference.attach(job)
            sample = 3 if count >= 10_000 else 20
            rq_us, _ = per_event(reference.observe, quiet[:sample])
            rl_us, _ = per_event(reference.observe, loud[:sample])
            ratio = (rq_us + rl_us) / (q_us + l_us)
            versus = (count, q_us + l_us, rq_us + rl_us)
            ref = f"{rq_us:12.0f} {rl_us:10.0f} {ratio:7.0f}x"
        print(f"{count:7d} {built:8.2f} {q_us:8.2f} {l_us:8.2f} {l_fired:8.2f} "
              f"{per_firing:9.2f} {ref}", flush=True)
    low, high = min(sizes), max(sizes)
    growth = sum(cost[high]) / sum(cost[low])
    out = [row(f"observe, {high:,} rules, 1,000 jobs (no firing / firing)",
               f"{cost[high][0]:.1f} / {cost[high][1]:.1f} us",
               f"{low} rules: {cost[low][0]:.1f} / {cost[low][1]:.1f} us", growth,
               "<= 2x (flat in the rule count)", growth <= 2)]
    if versus is not None:
        count, ours, theirs = versus
        out.append(row(f"observe, {count:,} rules, speed-up over the reference evaluator",
                       f"{ours:.1f} us", f"{theirs:,.0f} us reference", theirs / ours, "", None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, no reference")
    parser.add_argument("--max-reference", type=int, default=None,
                        help="largest rule count also run through the reference evaluator")
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")],
                        default=None,
                        help="comma-separated rule counts (default 10,100,1000,10000,100000)")
    add_rows_option(parser)
    args = parser.parse_args()
    mode = MODES[args.rows or ("quick" if args.quick else "full")]
    sizes = args.sizes or mode["sizes"]
    reference = (0 if args.quick else mode["reference"]) if args.max_reference is None \
        else args.max_reference
    with report_to_stderr(args.rows is not None):
        rows = observe_rows(sizes, mode["events"], reference)
        rows += build_rows(*mode["build"], mode["repeat"], memory=mode["memory"])
    if args.rows:
        emit(rows)


if __name__ == "__main__":
    main()
