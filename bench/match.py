"""Benchmark: the compiled matcher against the reference evaluator, 10 to 100k rules.

Run: `.venv/bin/python bench/match.py [--quick] [--sizes N,...] [--max-reference N]`. Prints,
for each rule count, the median microseconds per event for events that fire nothing and for
events that fire, the mean number of firings of the latter, and (up to 10k rules, or
`--max-reference`) the reference evaluator's figures and the ratio.

Rules come in rough site proportions: mostly `self` atoms on user-defined events and on work
items with exact extras, some `*` extras, labels, parents, job ids and two-atom compounds. Each
rule has its own event name or item, so an event fires a handful of rules whatever the count,
which is what makes the growth from 10 to 100k rules a measure of lookup cost, not of firings.
1000 live jobs in process groups of 10 (labels L0..L9 in each group, the first job the parent
of the others).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.rules import Rule
from support.reference_matcher import ReferenceMatcher

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
        rules.append(Rule.model_construct(directory="/site/callback", file=f"cb{i}.py",
                                          language="python", trigger=trig, line=i + 1, column=1,
                                          trigger_column=1, position=i))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, no reference")
    parser.add_argument("--max-reference", type=int, default=10_000,
                        help="largest rule count also run through the reference evaluator")
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")],
                        default=[10, 100, 1_000, 10_000, 100_000],
                        help="comma-separated rule counts (default 10,100,1000,10000,100000)")
    args = parser.parse_args()
    rng = random.Random(7)
    n = 2000 if args.quick else 20_000
    jobs = make_jobs()
    print(f"{JOBS} live jobs; {n} events per kind; medians in microseconds per event")
    print(f"{'rules':>7} {'build s':>8} {'no-fire':>8} {'fire':>8} {'firings':>8} "
          f"{'us/firing':>9} {'ref no-fire':>12} {'ref fire':>10} {'ratio':>8}")
    for count in args.sizes:
        rules = make_rules(count)
        start = time.perf_counter()
        matcher = Matcher(rules)
        for job in jobs:
            matcher.attach(job)
        build = time.perf_counter() - start
        quiet, loud = make_events(count, rng, n)
        q_us, _ = per_event(matcher.observe, quiet)
        l_us, l_fired = per_event(matcher.observe, loud)
        per_firing = (l_us - q_us) / l_fired if l_fired else 0.0
        ref = ""
        if not args.quick and count <= args.max_reference:
            reference = ReferenceMatcher(rules)
            for job in jobs:
                reference.attach(job)
            sample = 3 if count >= 10_000 else 20
            rq_us, _ = per_event(reference.observe, quiet[:sample])
            rl_us, _ = per_event(reference.observe, loud[:sample])
            ratio = (rq_us + rl_us) / (q_us + l_us)
            ref = f"{rq_us:12.0f} {rl_us:10.0f} {ratio:7.0f}x"
        print(f"{count:7d} {build:8.2f} {q_us:8.2f} {l_us:8.2f} {l_fired:8.2f} "
              f"{per_firing:9.2f} {ref}", flush=True)


if __name__ == "__main__":
    main()
