"""Load benchmark of the dispatcher: 100k events against 1k rules, in-process qcb and Python.

Prints events per second (from the first emit until everything ran and was audited), `emit`
latency p50/p99, run duration and queue-to-finish latency p50/p99, and checks that the audit
trail holds exactly the firings `replay --dry-run` predicts for the recorded stream (through
the CLI when it is installed, else through the same matcher directly).

    .venv/bin/python bench/load.py [--events N] [--rules N] [--jobs N] [--switch-interval S]
    .venv/bin/python bench/load.py --postgresql [--events N]

Targets: emit p99 under 100 us at 10k events/s offered (`--rate`, journal on); no firing
lost. The baseline is one `os.write` of the same line, the least a journalled emit costs.
Each run also prints the CPU seconds it cost per event: this process's (every thread, the
emitting loop included) and, on PostgreSQL, the server's for the trail's connections. On a
shared machine the rate swings with the load; the CPU per event much less.

`--postgresql` makes a throw-away cluster (`initdb`, as the tests do) and runs the same load
three times in one process: on a SQLite trail (the baseline), on a PostgreSQL trail with its
local file journal (the default) and with the journal in the database (`?journal=table`, one
group commit per round trip); then appends to the table journal alone from several threads at
once, which is where group commit can group. Prints one row per run and the ratio to SQLite.
For `bench/run` (`--rows`) it runs SQLite and PostgreSQL with its default journal, or SQLite
alone where PostgreSQL is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qbcallbacks.audit.reconcile import predict
from qbcallbacks.audit.store import AuditStore
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event, Job
from qbcallbacks.model.supervisor import MailMessage
from qbcallbacks.stream import event_line

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

#: Events per bench/run mode.
SIZES = {"smoke": 2_000, "quick": 20_000, "full": 100_000}


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


def journal_floor(path: Path, stream: list[tuple[Event, Job | None]]) -> list[float]:
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


def parse_args() -> argparse.Namespace:
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
    ap.add_argument("--postgresql", action="store_true",
                    help="also on PostgreSQL trails (a throw-away cluster), SQLite as baseline")
    add_rows_option(ap)
    args = ap.parse_args()
    if args.rows:
        args.events = SIZES[args.rows]
    return args


def offer(d: Dispatcher, stream: list[tuple[Event, Job | None]], rate: float) -> list[float]:
    """Emit the stream at `rate` events per second (0: flooded); each emit's latency in us."""
    lat: list[float] = []
    clock = time.perf_counter_ns
    emit = d.emit
    gap = 1e9 / rate if rate else 0.0
    start = clock()
    for i, (event, job) in enumerate(stream):
        if gap:
            ahead = i * gap - (clock() - start)
            if ahead > 1e6:  # paced: sleep (letting the engine's threads run) when ahead
                time.sleep(ahead / 1e9)
        a = clock()
        emit(event, job)
        lat.append((clock() - a) / 1000.0)
    return lat


def run(args: argparse.Namespace, work: Path, audit: str | Path,
        stream: list[tuple[Event, Job | None]]) -> dict[str, Any]:
    """One load run on the trail at `audit`; its figures, checked against the dry run."""
    cbdir = work / "callback"
    config = DispatcherSettings(queue_size=len(stream) + 10, max_runs=8,
                                per_runtime={"py": 4, "qcb": 4, "pl": 1}, timeout=30,
                                synchronous=args.synchronous)
    d = Dispatcher([str(cbdir)], NullSupervisor(), mode="in-process", settings=config,
                   audit=audit)
    server = ServerCpu(audit)
    t0, c0 = time.perf_counter(), time.process_time()
    lat = offer(d, stream, args.rate)
    t_emit = time.perf_counter() - t0
    d.wait_idle()
    t_all = time.perf_counter() - t0
    cpu, server_cpu = time.process_time() - c0, server.seconds()
    d.close()
    firings = d.audit.query(session=d.session)
    predicted, how = dry_run_prediction(cbdir, d.audit, d.session, d.rules, work)
    d.audit.close()
    got = Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings)
    return {"rules": len(d.rules), "lat": lat, "emit_rate": len(stream) / t_emit,
            "sustained": len(stream) / t_all, "firings": firings, "how": how,
            "predicted": sum(predicted.values()), "lost": sum((predicted - got).values()),
            "extra": sum((got - predicted).values()),
            "statuses": Counter(f.status for f in firings),
            "cpu_us": cpu / len(stream) * 1e6, "server_us": server_cpu / len(stream) * 1e6}


class ServerCpu:
    """CPU seconds the PostgreSQL server spent for a trail's connections (the backends
    connected to its database when made), from /proc; 0 for a SQLite trail."""

    def __init__(self, audit: str | Path) -> None:
        self.pids: list[int] = []
        if isinstance(audit, str) and audit.startswith("postgresql://"):
            import psycopg

            from qbcallbacks.audit.pgstore import split_url

            with psycopg.connect(split_url(audit)[0]) as pg:
                self.pids = [r[0] for r in pg.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()").fetchall()]
        self.start = self._now()

    def _now(self) -> float:
        ticks = 0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        return self._now() - self.start


def report(r: dict[str, Any], base: list[float], rate: float) -> bool:
    """Print one run's figures; True when nothing was lost."""
    lat, firings = r["lat"], r["firings"]
    durations = [f.duration * 1e6 for f in firings if f.duration is not None]
    e2e = [((f.finished_at or 0) - f.queued_at) * 1e6 for f in firings]
    print(f"emit loop:        {r['emit_rate']:,.0f} events/s")
    server = f" (+ {r['server_us']:.1f} us the server's)" if r["server_us"] else ""
    print(f"CPU per event:    {r['cpu_us']:.1f} us this process's{server}")
    print(f"sustained:        {r['sustained']:,.0f} events/s (first emit to all audited)")
    print(f"emit latency:     p50 {pct(lat, 0.50):.1f} us, p99 {pct(lat, 0.99):.1f} us, "
          f"max {max(lat):.0f} us")
    print(f"journal floor:    p50 {pct(base, 0.50):.1f} us, p99 {pct(base, 0.99):.1f} us "
          f"(one os.write of the same line; emit p99 is {pct(lat, 0.99) / pct(base, 0.99):.1f}x)")
    print(f"firings:          {len(firings):,} ({r['statuses'].most_common()})")
    print(f"run duration:     p50 {pct(durations, 0.5):.0f} us, p99 {pct(durations, 0.99):.0f} us")
    print(f"queued->finished: p50 {pct(e2e, 0.5) / 1000:.1f} ms, "
          f"p99 {pct(e2e, 0.99) / 1000:.1f} ms")
    print(f"audit vs {r['how']}: {r['predicted']:,} predicted, {r['lost']} missing, "
          f"{r['extra']} unexpected")
    ok = bool(r["lost"] == 0 and r["extra"] == 0 and set(r["statuses"]) == {"ok"})
    # Flooded: at least 10k events/s; paced: keeping up with the offered rate.
    want = 0.9 * rate if rate else 10_000
    print("targets: emit p99 < 100 us: " + ("met" if pct(lat, 0.99) < 100 else "MISSED")
          + f"; >= {want:,.0f} events/s: " + ("met" if r["sustained"] >= want else "MISSED")
          + "; no firing lost: " + ("met" if ok else "MISSED"))
    return ok


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throw-away cluster, made as the tests make theirs; yields a new database's URL."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.postgres import new_database, throwaway_cluster

    with throwaway_cluster() as server:
        yield new_database(server, "bench")


def group_commit(url: str, threads: int, per_thread: int) -> tuple[float, list[float]]:
    """The table journal alone, appended to from `threads` threads at once: events per second
    and each append's latency in us (what grouping buys when appenders overlap)."""
    from qbcallbacks.audit.backends import open_audit, open_journal

    store = open_audit(f"{url}&trail=group&journal=table")
    journal = open_journal(store)
    lat: list[float] = []
    event = Event(name="complete", type="job", job=1)

    def append() -> None:
        mine = []
        for _ in range(per_thread):
            a = time.perf_counter_ns()
            journal.append(event, None)
            mine.append((time.perf_counter_ns() - a) / 1000.0)
        lat.extend(mine)

    workers = [threading.Thread(target=append) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.perf_counter() - t0
    journal.close()
    store.close()
    return threads * per_thread / took, lat


def compare(args: argparse.Namespace, work: Path, stream: list[tuple[Event, Job | None]],
            base: list[float], *, table: bool = True
            ) -> tuple[bool, list[tuple[str, dict[str, Any]]]]:
    """SQLite, then PostgreSQL with its local journal and (`table`) with the journal in the
    database, in one process; a row each, and ratios."""
    results, ok = [], True
    with postgres() as url:
        runs: list[tuple[str, str | Path]] = [("SQLite", work / "audit.db"),
                ("PostgreSQL, local journal", f"{url}&trail=local&journal={work / 'journal'}")]
        if table:
            runs.append(("PostgreSQL, table journal", f"{url}&trail=table&journal=table"))
        for label, audit in runs:
            print(f"\n== {label}")
            r = run(args, work, audit, stream)
            ok = report(r, base, args.rate) and ok
            results.append((label, r))
        grouped = group_commit(url, 8, max(200, len(stream) // 40)) if table else None
    print(f"\n{'what':28} {'events/s':>10} {'emit p50':>9} {'emit p99':>9} {'vs sqlite':>10} "
          f"{'CPU/event':>10} {'server':>7}")
    for label, r in results:
        print(f"{label:28} {r['sustained']:10,.0f} {pct(r['lat'], 0.5):7.1f}us "
              f"{pct(r['lat'], 0.99):7.0f}us {r['sustained'] / results[0][1]['sustained']:9.2f}x "
              f"{r['cpu_us']:8.1f}us {r['server_us']:5.1f}us")
    if grouped is not None:
        rate, lat = grouped
        print(f"{'table journal, 8 threads':28} {rate:10,.0f} {pct(lat, 0.5):7.1f}us "
              f"{pct(lat, 0.99):7.0f}us  (appends only, grouped)")
    return ok, results


def have_postgres() -> bool:
    """Whether a throw-away cluster can be made and reached here (as the tests make theirs)."""
    return (bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
            and importlib.util.find_spec("psycopg") is not None)


def rows_of(args: argparse.Namespace, results: list[tuple[str, dict[str, Any]]],
            base: list[float]) -> list[dict[str, Any]]:
    """The table rows: each trail against the rate offered, and against SQLite's run."""
    want = 0.9 * args.rate if args.rate else 10_000
    floor = pct(base, 0.99)
    out = []
    for label, r in results:
        ok = r["lost"] == 0 and r["extra"] == 0
        p99 = pct(r["lat"], 0.99)
        server = f" + {r['server_us']:.0f} server" if r["server_us"] else ""
        out.append(row(f"durable dispatch, {label} trail, {args.rate:,.0f} events/s offered",
                       f"{r['sustained']:,.0f} events/s, {r['lost']} lost; CPU "
                       f"{r['cpu_us']:.0f}{server} us/event",
                       f"{args.rate:,.0f} events/s offered", r["sustained"] / want,
                       f">= {want:,.0f} events/s, none lost", r["sustained"] >= want and ok))
        out.append(row(f"durable dispatch, {label} trail, emit p99", f"{p99:.0f} us",
                       f"{floor:.1f} us one os.write", p99 / floor, "<= 100 us", p99 <= 100))
    return out


def main() -> int:
    args = parse_args()
    with report_to_stderr(args.rows is not None):
        ok, rows = run_load(args)
    if args.rows:
        emit(rows)
    return 0 if ok else 1


def run_load(args: argparse.Namespace) -> tuple[bool, list[dict[str, Any]]]:
    """Print the report; (no firing lost, the rows)."""
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "callback").mkdir()
        make_rules(work / "callback", args.rules)
        stream = make_stream(args.events, args.jobs, args.seed)
        base = journal_floor(work / "floor.log", stream)
        print(f"{args.rules} rules, {len(stream)} events, {args.jobs} jobs")
        if args.postgresql or (args.rows and have_postgres()):
            ok, results = compare(args, work, stream, base, table=args.postgresql)
        else:
            r = run(args, work, work / "audit.db", stream)
            ok, results = report(r, base, args.rate), [("SQLite", r)]
    return ok, rows_of(args, results, base)


if __name__ == "__main__":
    sys.exit(main())
