"""Reliability benchmark: a host that is SIGKILLed at random points loses no accepted event.

A host process emits a stream of job events (each to its own job) through a dispatcher with
isolated Python callbacks that succeed, fail, hang past their timeout and crash their worker,
and is SIGKILLed at random points; each time a new host is started on the same audit database
and goes on from the first event whose `emit` had not returned. At the end the trail is
compared with `qbcallbacks replay --dry-run` of the accepted events.

    .venv/bin/python bench/reliability.py            # 3,000 events, 3 kills (about a minute)
    .venv/bin/python bench/reliability.py --full     # 100,000 events, 10 kills
    .venv/bin/python bench/reliability.py --backlog 100000   # a restart over a large backlog

Prints: accepted (an emit the kill interrupted counts only if the trail has its event), lost
(must be 0), run twice (only firings running at a kill, or finished but not yet committed),
lost to crash loops (running at more kills than `max_reruns` allows), and the host's peak
memory in its first and last life (must stay flat). The baseline is a run of the same stream
with no kill, in the same invocation. With `--backlog N`, a host instead starts on a trail a
killed host left with N firings never run and the events of N jobs never matched (a state
change that fires, then the job's removal), and its peak memory is compared with a start over
N = 20,000, which fills the default bounds (it must stay flat: the backlog waits in the trail
and the journal, not in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from qbcallbacks.audit.backends import open_audit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_rows_option, emit, report_to_stderr, row

CALLBACKS = {
    "ok.py": ("complete-job-self", "print('ok')\n"),
    "fail.py": ("failed-job-self", "import sys\nsys.exit(2)\n"),
    "hang.py": ("killed-job-self", "import time\ntime.sleep(30)\n"),
    "crash.py": ("suspend-job-self", "import os\nos._exit(7)\n"),
}
#: Event names, per thousand: mostly successes, some failures, a few hangs and crashes.
NAMES = ["complete"] * 975 + ["failed"] * 20 + ["killed"] * 2 + ["suspend"] * 3

HOST = textwrap.dedent("""
    import json, os, sys, time
    from qbcallbacks.dispatch.dispatcher import (BackPressureError, Dispatcher,
                                                 DispatcherSettings)
    from qbcallbacks.model.events import Event
    from qbcallbacks.model.supervisor import MailMessage

    class Null:
        def __getattr__(self, name):
            return lambda *a, **k: None

    cbdir, audit, events, accepted, start, finish, rate = sys.argv[1:8]
    settings = DispatcherSettings(rule_timeouts={"hang.py": 0.3},
                                  timeout=5, per_runtime={"py": 2}, max_runs=4)
    d = Dispatcher([cbdir], Null(), audit=audit, settings=settings)
    fd = os.open(accepted, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with open(events) as fh:
        lines = fh.read().splitlines()
    t0, gap = time.monotonic(), 1 / float(rate)
    for i in range(int(start), len(lines)):
        pause = t0 + (i - int(start)) * gap - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # a supervisor's pace, so kills land all along the run
        e = json.loads(lines[i])
        os.write(fd, f"t{i}\\n".encode())  # in doubt until emit returns
        while True:
            try:
                job = e["job"]["id"] if isinstance(e["job"], dict) else e["job"]
                d.emit(Event(name=e["event"], type="job", job=job))
                break
            except BackPressureError:  # what a supervisor does: wait, then retry
                time.sleep(0.05)
        os.write(fd, f"{i}\\n".encode())  # the event's emit returned: it is accepted
    if finish == "1":
        d.wait_idle()
        d.close()
        # This process's own high-water mark (ru_maxrss would also count the benchmark's
        # peak, which a child started by fork or vfork carries over through exec).
        with open("/proc/self/status") as fh:
            print(next(line.split()[1] for line in fh if line.startswith("VmHWM:")))
""")


LEFT_BEHIND = textwrap.dedent("""
    import os, sys
    from qbcallbacks.audit.backends import open_audit, open_journal
    from qbcallbacks.audit.records import PendingFiring
    from qbcallbacks.model.events import Event

    cbdir, audit, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_audit(audit)
    store.begin_session()
    journal = open_journal(store)
    for lo in range(0, n, 5000):
        store.record_batch([], [PendingFiring(
            event_seq=i, ordinal=0, event=Event(name="complete", type="job", job=i + 1),
            job=i + 1, callback="ok.py", directory=cbdir, trigger="complete-job-self",
            language="python") for i in range(lo, min(n, lo + 5000))])
    for i in range(n):  # each job changes state, then is removed (the engine forgets it)
        journal.append(Event(name="complete", type="job", job=n + i + 1), None)
        journal.append(Event(name="removed", type="job", job=n + i + 1), None)
    os._exit(0)  # a host killed with all of it still to do
""")

DRAIN = textwrap.dedent("""
    import sys
    from qbcallbacks.dispatch.dispatcher import Dispatcher

    class Null:
        def __getattr__(self, name):
            return lambda *a, **k: None

    d = Dispatcher([sys.argv[1]], Null(), mode="in-process", audit=sys.argv[2])
    d.wait_idle()
    d.close()
    with open("/proc/self/status") as fh:
        print(next(line.split()[1] for line in fh if line.startswith("VmHWM:")))
""")


def restart_over(work: Path, n: int) -> dict[str, Any]:
    """A host starts on a trail a killed host left with `n` firings recorded but never run
    and the events of `n` jobs journalled but never matched; it drains them and closes."""
    cbdir = work / "cb"
    cbdir.mkdir(parents=True)
    (cbdir / "ok.py").write_text(CALLBACKS["ok.py"][1])
    (cbdir / "callbacks.conf").write_text("ok.py = complete-job-self\n")
    for p in cbdir.iterdir():
        p.chmod(0o644)
    audit = work / "audit.db"
    subprocess.run([sys.executable, "-c", LEFT_BEHIND, str(cbdir), str(audit), str(n)],
                   check=True)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", DRAIN, str(cbdir), str(audit)],
                         capture_output=True, text=True, check=True)
    took = time.perf_counter() - t0
    store = open_audit(audit, readonly=True)
    done = sum(n for (_cb, status), n in store.counts().items() if status == "ok")
    store.close()
    return {"peak": int(out.stdout.split()[-1]), "done": done, "seconds": took}


#: A backlog that already fills the default bounds (10,000 firings waiting or running, 10,000
#: events queued): a larger one must not take more memory.
SMALL_BACKLOG = 20_000


def backlog_main(n: int) -> int:
    small = min(SMALL_BACKLOG, n)
    with tempfile.TemporaryDirectory() as tmp:
        base = restart_over(Path(tmp) / "small", small)
        got = restart_over(Path(tmp) / "large", n)
    print("restart over what a killed host left: N firings never run, N jobs' events never "
          "matched")
    for size, r in ((small, base), (n, got)):
        print(f"  N = {size:>9,}: {r['done']:>9,} of {2 * size:,} run, peak {r['peak']:,} KiB, "
              f"{r['seconds']:.1f} s")
    ratio = got["peak"] / base["peak"]
    ok = base["done"] == 2 * small and got["done"] == 2 * n and ratio <= 1.5
    print(f"  peak ratio {ratio:.2f}x")
    print("targets: everything run, peak flat (at most 1.5x): " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def accepted_upto(path: Path) -> int:
    """The index after the last event whose emit was started (`t<i>`) or returned (`<i>`)."""
    if not path.exists():
        return 0
    done = [int(x.lstrip("t")) for x in path.read_text().split()]
    return max(done) + 1 if done else 0


def in_doubt(path: Path) -> set[int]:
    """Events whose emit was started but never returned (the host was killed inside it)."""
    words = path.read_text().split()
    started = {int(w[1:]) for w in words if w.startswith("t")}
    return started - {int(w) for w in words if not w.startswith("t")}


def run(work: Path, n: int, kills: int, seed: int, rate: float) -> dict[str, Any]:
    cbdir = work / "cb"
    cbdir.mkdir(parents=True)
    for name, (_trigger, code) in CALLBACKS.items():
        (cbdir / name).write_text(code)
    (cbdir / "callbacks.conf").write_text(
        "".join(f"{name} = {trigger}\n" for name, (trigger, _c) in CALLBACKS.items()))
    for p in cbdir.iterdir():
        p.chmod(0o644)
    rng = random.Random(seed)
    events = work / "events.jsonl"
    # Each job gets one state change, then is removed (as a supervisor's jobs are, which
    # lets the engine forget them): n events over n / 2 jobs.
    lines = []
    for i in range(n // 2):
        lines.append({"event": rng.choice(NAMES), "type": "job", "job": {"id": i + 1}})
        lines.append({"event": "removed", "type": "job", "job": i + 1})
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    audit, accepted = work / "audit.db", work / "accepted"
    points = sorted(rng.sample(range(n // 20, n), kills)) if kills else []
    peaks: list[int] = []
    for point in points:
        start = accepted_upto(accepted)
        proc = subprocess.Popen([sys.executable, "-c", HOST, str(cbdir), str(audit),
                                 str(events), str(accepted), str(start), "0", str(rate)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while accepted_upto(accepted) <= point and proc.poll() is None:
            time.sleep(0.01)
        peaks.append(peak_kib(proc.pid))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    last = subprocess.run([sys.executable, "-c", HOST, str(cbdir), str(audit), str(events),
                           str(accepted), str(accepted_upto(accepted)), "1", str(rate)],
                          capture_output=True, text=True, check=True)
    peaks.append(int(last.stdout.split()[-1]))

    store = open_audit(audit, readonly=True)
    seen = {(rec.event.name, rec.event.job) for rec in store.events()}
    rows = store.query()
    store.close()
    # An emit the kill interrupted may or may not have been taken: the trail tells.
    stream = [json.loads(line) for line in events.read_text().splitlines()]
    refused = {i for i in in_doubt(accepted)
               if (stream[i]["event"], i // 2 + 1) not in seen}
    taken = work / "taken.jsonl"
    taken.write_text("".join(line + "\n" for i, line in
                             enumerate(events.read_text().splitlines()) if i not in refused))
    dry = subprocess.run([sys.executable, "-m", "qbcallbacks", "replay", str(cbdir), "--events",
                          str(taken), "--dry-run", "--format", "json"],
                         capture_output=True, text=True, check=False)
    predicted = Counter((d["job"], d["callback"]) for d in
                        (json.loads(line) for line in dry.stdout.splitlines() if line.strip()))
    final = Counter((r.job, r.callback) for r in rows if r.status != "pending")
    return {
        "accepted": accepted_upto(accepted) - len(refused),
        "predicted": sum(predicted.values()),
        "lost": sum((predicted - final).values()),
        "unexpected": sum((final - predicted).values()),
        "run twice": sum(1 for r in rows if r.attempts > 1),
        "lost to crash loops": sum(1 for r in rows if r.status == "lost"),
        "peak KiB first": peaks[0],
        "peak KiB last": peaks[-1],
        "kills": len(points),
        "peaks": peaks,
        "in doubt, not taken": len(refused),
    }


#: (events, kills, rate) per bench/run mode.
SIZES = {"smoke": (300, 1, 1_000), "quick": (1_500, 2, 1_000), "full": (100_000, 10, 2_000)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="100,000 events and 10 kills")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=float, default=None,
                    help="events per second the host emits (default 500, 2,000 with --full)")
    ap.add_argument("--backlog", type=int, default=None, metavar="N",
                    help="instead: restart over N firings never run and N jobs' events "
                         "never matched, against N = 20,000")
    add_rows_option(ap)
    args = ap.parse_args()
    if args.backlog is not None:
        return backlog_main(args.backlog)
    rate = args.rate or (2_000 if args.full else 500)
    n = args.events or (100_000 if args.full else 3_000)
    kills = args.kills if args.kills is not None else (10 if args.full else 3)
    if args.rows:
        n, kills, rate = SIZES[args.rows]
    with report_to_stderr(args.rows is not None):
        ok, rows = killed_run(n, kills, rate, args.seed)
    if args.rows:
        emit(rows)
    return 0 if ok else 1


def killed_run(n: int, kills: int, rate: float, seed: int) -> tuple[bool, list[dict[str, Any]]]:
    """Print the report; (targets met, the row)."""
    args = argparse.Namespace(seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        base = run(Path(tmp) / "baseline", n, 0, args.seed, rate)
        t_base = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = run(Path(tmp) / "killed", n, kills, args.seed, rate)
        t_killed = time.perf_counter() - t0
    print(f"events {n:,} at {rate:,.0f}/s, kills {got['kills']}")
    for key in ("accepted", "in doubt, not taken", "predicted", "lost", "unexpected", "run twice",
                "lost to crash loops", "peak KiB first", "peak KiB last"):
        print(f"  {key:<20} {got[key]:>10,}   (no kill: {base[key]:,})")
    print(f"  peak KiB per life    {', '.join(f'{p:,}' for p in got['peaks'])}")
    print(f"  wall time            {t_killed:>10.1f} s (no kill: {t_base:.1f} s, "
          f"{t_killed / t_base:.2f}x)")
    flat = got["peak KiB last"] <= 1.5 * max(got["peak KiB first"], base["peak KiB last"])
    taken = got["accepted"] + got["in doubt, not taken"] == n
    ok = got["lost"] == 0 and got["unexpected"] == 0 and taken and flat
    print("targets: 0 lost, nothing unexpected, every event accepted or refused, memory flat: "
          + ("met" if ok else "MISSED"))
    return ok, [row(f"SIGKILLed host, {n:,} events, {got['kills']} kill(s): lost, wall time",
                    f"{got['lost']} lost, {t_killed:.1f} s", f"no kill: {t_base:.1f} s",
                    t_killed / t_base, "0 lost, memory flat", ok)]


if __name__ == "__main__":
    sys.exit(main())
