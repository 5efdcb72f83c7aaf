"""Reload benchmark: how events are acked while a big rule set is reloaded.

An embedded `Dispatcher` (journal and trail on) takes one event at a time from this process;
an ack is `emit` returning (the event is journaled and queued). First the baseline: acks with
no reload, for as long as the reload will take; then a reload of `--rules` rules (read,
numbered and built on the loader thread, swapped in by the matcher thread) while the same
stream goes on. Both in the same run. Also printed: how long the reload took, and the
process's peak memory before and after it (the old and the new set both live meanwhile).

    .venv/bin/python bench/reload.py                  # 200,000 rules
    .venv/bin/python bench/reload.py --rules 600000

`--rows smoke|quick|full` prints the table rows `bench/run` reads (one JSON object a line).
The goal: during a reload, acks keep at least half their usual rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _rows import add_rows_option, emit, row

from qbcallbacks.dispatch.dispatcher import BackPressureError, Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event

SIZES = {"smoke": 5_000, "quick": 100_000, "full": 200_000}


class _Null:
    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _write(d: Path, rules: int) -> None:
    (d / "callbacks.conf").write_text("never.py = migrated-job-self\n" + "".join(
        f"never.py = complete-work-self-{i}\n" for i in range(rules)))


def _acks(d: Dispatcher, running: threading.Thread | None, seconds: float,
          ) -> tuple[list[float], float]:
    """Emit one event at a time while `running` is alive (or for `seconds`)."""
    lat: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    n = 0
    while (running.is_alive() if running is not None else time.perf_counter() < end):
        t = time.perf_counter()
        # A refusal is a stall of `emit_timeout`: counted in the latencies, not fatal.
        with contextlib.suppress(BackPressureError):
            d.emit(Event(name="running", type="job", job=n % 500 + 1))
        lat.append(time.perf_counter() - t)
        n += 1
    return lat, time.perf_counter() - start


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(rules: int) -> dict[str, float]:
    os.environ["QBCALLBACKS_MAX_CONFIG_BYTES"] = str(256 << 20)
    with tempfile.TemporaryDirectory(prefix="qbcb-reload-") as tmp:
        d = Path(tmp) / "cb"
        d.mkdir()
        _write(d, 0)
        (d / "never.py").write_text("print('never')\n")
        disp = Dispatcher([str(d)], _Null(), audit=Path(tmp) / "audit.db",  # type: ignore[arg-type]
                          settings=DispatcherSettings(reload_budget=3600))
        with disp:
            _write(d, rules)
            timing: dict[str, float] = {}
            peak_before = _peak_mb()

            def reload() -> None:
                t = time.perf_counter()
                found = disp.reload()
                timing["reload"] = time.perf_counter() - t
                assert not found, found

            # The baseline first, for about as long as a reload of this size takes.
            guess = max(1.0, rules / 60_000)
            base, base_s = _acks(disp, None, guess)
            thread = threading.Thread(target=reload)
            thread.start()
            during, during_s = _acks(disp, thread, 0)
            thread.join()
            assert len(disp.rules) == rules + 1
            disp.wait_idle(600)
    return {"reload_s": timing["reload"], "base_rate": len(base) / base_s,
            "during_rate": len(during) / during_s, "base_p99": _pct(base, 99),
            "during_p99": _pct(during, 99), "during_max": max(during),
            "base_max": max(base), "peak_before": peak_before, "peak_after": _peak_mb()}


def _pct(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100)[int(p) - 1] if len(samples) > 1 else samples[0]


def rows(r: dict[str, float], rules: int) -> list[dict[str, object]]:
    ratio = r["during_rate"] / r["base_rate"]
    return [
        row(f"acks/s during a reload of {rules:,} rules",
            f"{r['during_rate']:,.0f}/s (p99 {r['during_p99'] * 1e3:.1f} ms)",
            f"{r['base_rate']:,.0f}/s without (p99 {r['base_p99'] * 1e3:.1f} ms)",
            round(ratio, 2), ">= 0.5", ratio >= 0.5),
        row(f"reload of {rules:,} rules, peak memory",
            f"{r['reload_s']:.1f} s, {r['peak_after']:,.0f} MB",
            f"{r['peak_before']:,.0f} MB before", None, "", None),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=SIZES["full"])
    add_rows_option(ap)
    args = ap.parse_args()
    rules = SIZES[args.rows] if args.rows else args.rules
    r = measure(rules)
    if args.rows:
        emit(rows(r, rules))
        return 0
    print(f"reload of {rules:,} rules: {r['reload_s']:.2f} s", file=sys.stderr)
    print(f"acks without a reload: {r['base_rate']:,.0f}/s, p99 {r['base_p99'] * 1e3:.2f} ms, "
          f"worst {r['base_max'] * 1e3:.1f} ms", file=sys.stderr)
    print(f"acks during the reload: {r['during_rate']:,.0f}/s, p99 "
          f"{r['during_p99'] * 1e3:.2f} ms, worst {r['during_max'] * 1e3:.1f} ms "
          f"(ratio of rates {r['during_rate'] / r['base_rate']:.2f}; goal >= 0.5)",
          file=sys.stderr)
    print(f"peak memory: {r['peak_before']:,.0f} MB before, {r['peak_after']:,.0f} MB after",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
