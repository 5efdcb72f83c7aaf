"""Load benchmark of the dispatcher: 100k events against 1k rules, in-process qcb and Python.

Prints events per second (from the first emit until everything ran and was audited), `emit`
latency p50/p99, run duration and queue-to-finish latency p50/p99, and checks that the audit
trail holds exactly the firings `replay --dry-run` predicts for the recorded stream (through
the CLI when it is installed, else through the same matcher directly).

    .venv/bin/python bench/load.py [--events N] [--rules N] [--jobs N] [--switch-interval S]

Targets: emit p99 under 100 us at 10k events/s offered (`--rate`, journal on); no firing
lost. The baseline is one `os.write` of the same line, the least a journalled emit costs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from qbcallbacks.audit.reconcile import predict
from qbcallbacks.audit.store import AuditStore  # the protocol every trail follows
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.supervisor import MailMessage
from qbcallbacks.stream import event_line


class NullSupervisor:
    """Answers every call at once, so the figures are the engine's, not a supervisor's."""

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        return [{"id": int(args[1]), "name": "job", "label": "", "status": "running",
                 "pgrp": int(args[1]), "pid": 0}]

    def job_action(self, action: Any, job_id: int) -> bool:
        return True

    def work_action(self, action: Any, job_id: int, work: str) -> bool:
        return True

    def subjob_action(self, action: Any, job_id: int, subjob: int) -> bool:
        return True

    def mail(self, message: MailMessage) -> None:
        return None


def make_rules(root: Path, n_rules: int) -> None:
    """Mostly rules on events that rarely happen (as on a real farm, where most callbacks
    wait for something specific), a few on common events; half qcb, half Python."""
    (root / "noop.qcb").write_text("# does nothing, in-process\n")
    (root / "touch.py").write_text("j = qb.jobid()\n")
    for p in root.iterdir():
        p.chmod(0o644)
    lines = []
    common = ["complete-work-self-*", "failed-job-self", "done-job-self",
              "complete-work-self-7 && complete-work-self-8"]
    for i in range(n_rules):
        script = "noop.qcb" if i % 2 == 0 else "touch.py"
        if i < 8:
            trigger = common[i % len(common)]
        else:
            trigger = f"ev{i}-job-self" if i % 3 else f"complete-work-self-{1000 + i}"
        lines.append(f"{script} = {trigger}")
    (root / "callbacks.conf").write_text("\n".join(lines) + "\n")
    (root / "callbacks.conf").chmod(0o644)


def make_stream(n_events: int, n_jobs: int, seed: int) -> list[tuple[Event, Job | None]]:
    rng = random.Random(seed)
    stream: list[tuple[Event, Job | None]] = []
    for j in range(1, n_jobs + 1):
        stream.append((Event(name="submit", type="job", job=j), Job(id=j, name=f"job{j}")))
    while len(stream) < n_events:
        j = rng.randint(1, n_jobs)
        r = rng.random()
        if r < 0.45:
            ev = Event(name="running", type="work", job=j, extra=str(rng.randint(1, 100)))
        elif r < 0.50:
            ev = Event(name="complete", type="work", job=j, extra=str(rng.randint(1, 100)))
        elif r < 0.95:
            ev = Event(name=f"ev{rng.randint(0, 5000)}", type="job", job=j)
        else:
            ev = Event(name="modified", type="job", job=j)
        stream.append((ev, None))
    return stream[:n_events]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def dry_run_prediction(directory: Path, audit: AuditStore, session: int,
                       rules: Any, work: Path) -> tuple[Counter[tuple[int, int, str, str]], str]:
    events = audit.events(session)
    try:
        import qbcallbacks.cli.replay  # noqa: F401 - only to know whether the CLI exists
    except ImportError:
        return Counter(predict(rules, events)), "matcher (replay CLI not installed)"
    stream = work / "events.jsonl"
    with stream.open("w") as fh:
        for e in events:
            fh.write(event_line(e.event, e.job_data) + "\n")
    done = subprocess.run([sys.executable, "-m", "qbcallbacks", "replay", str(directory),
                           "--events", str(stream), "--dry-run", "--format", "json"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"replay --dry-run failed: {done.stderr}")
    got: Counter[tuple[int, int, str, str]] = Counter()
    for line in done.stdout.splitlines():
        if line.strip():
            d = json.loads(line)
            got[(d["seq"], d["job"], d["callback"], d["trigger"])] += 1
    return got, "qbcallbacks replay --dry-run"


def journal_floor(path: Path, stream) -> list[float]:
    """The baseline: the cost of the one system call an emit must make to survive a kill."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    out = []
    try:
        for event, job in stream:
            a = time.perf_counter_ns()
            line = f"{event.name}\t{event.job}\t{job.model_dump_json() if job else 'null'}\n"
            os.write(fd, line.encode())
            out.append((time.perf_counter_ns() - a) / 1000.0)
    finally:
        os.close(fd)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=1_000)
    ap.add_argument("--jobs", type=int, default=1_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--synchronous", choices=["normal", "full"], default="normal",
                    help="full: the journal and trail also survive a power loss (fsync)")
    ap.add_argument("--rate", type=float, default=10_000,
                    help="events per second offered to emit (0: as fast as possible)")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval for the run (a host tuning knob)")
    args = ap.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cbdir = work / "callback"
        cbdir.mkdir()
        make_rules(cbdir, args.rules)
        stream = make_stream(args.events, args.jobs, args.seed)
        config = DispatcherSettings(queue_size=len(stream) + 10, max_runs=8,
                                  per_runtime={"py": 4, "qcb": 4, "pl": 1}, timeout=30,
                                    synchronous=args.synchronous)
        d = Dispatcher([str(cbdir)], NullSupervisor(), mode="in-process", settings=config,
                       audit=work / "audit.db")
        print(f"{len(d.rules)} rules, {len(stream)} events, {args.jobs} jobs")
        lat: list[float] = []
        clock = time.perf_counter_ns
        emit = d.emit
        gap = 1e9 / args.rate if args.rate else 0.0
        t0 = time.perf_counter()
        start = clock()
        for i, (event, job) in enumerate(stream):
            if gap:
                ahead = i * gap - (clock() - start)
                if ahead > 1e6:  # paced: sleep (letting the engine's threads run) when ahead
                    time.sleep(ahead / 1e9)
            a = clock()
            emit(event, job)
            lat.append((clock() - a) / 1000.0)
        t_emit = time.perf_counter() - t0
        d.wait_idle()
        t_all = time.perf_counter() - t0
        d.close()
        firings = d.audit.query(session=d.session)
        durations = [f.duration * 1e6 for f in firings if f.duration is not None]
        e2e = [((f.finished_at or 0) - f.queued_at) * 1e6 for f in firings]
        predicted, how = dry_run_prediction(cbdir, d.audit, d.session, d.rules, work)
        got = Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings)
        statuses = Counter(f.status for f in firings)
        d.audit.close()
        base = journal_floor(work / "floor.log", stream)

    print(f"emit loop:        {len(stream) / t_emit:,.0f} events/s")
    print(f"sustained:        {len(stream) / t_all:,.0f} events/s (first emit to all audited)")
    print(f"emit latency:     p50 {pct(lat, 0.50):.1f} us, p99 {pct(lat, 0.99):.1f} us, "
          f"max {max(lat):.0f} us")
    print(f"journal floor:    p50 {pct(base, 0.50):.1f} us, p99 {pct(base, 0.99):.1f} us "
          f"(one os.write of the same line; emit p99 is {pct(lat, 0.99) / pct(base, 0.99):.1f}x)")
    print(f"firings:          {len(firings):,} ({statuses.most_common()})")
    print(f"run duration:     p50 {pct(durations, 0.5):.0f} us, p99 {pct(durations, 0.99):.0f} us")
    print(f"queued->finished: p50 {pct(e2e, 0.5) / 1000:.1f} ms, "
          f"p99 {pct(e2e, 0.99) / 1000:.1f} ms")
    lost = sum((predicted - got).values())
    extra = sum((got - predicted).values())
    print(f"audit vs {how}: {sum(predicted.values()):,} predicted, {lost} missing, "
          f"{extra} unexpected")
    ok = lost == 0 and extra == 0 and set(statuses) == {"ok"}
    # Flooded: at least 10k events/s; paced: keeping up with the offered rate.
    want = 0.9 * args.rate if args.rate else 10_000
    print("targets: emit p99 < 100 us: " + ("met" if pct(lat, 0.99) < 100 else "MISSED")
          + f"; >= {want:,.0f} events/s: " + ("met" if len(stream) / t_all >= want else "MISSED")
          + "; no firing lost: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
