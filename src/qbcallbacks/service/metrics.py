"""What the service counts, in Prometheus' terms (`GET /metrics`), on a registry of its own so
that two services in one process (tests) never share counters."""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from ..audit.sql import SqlTrail

_FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1.0)
_RUNS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


#: The outcomes of an event, as `qbcallbacks_events_total` labels them.
OUTCOMES = ("journaled", "duplicate", "rejected")


class EventTally:
    """The events counted by outcome and the ack times by bucket, as plain numbers that the
    service adds to under its own lock (a prometheus counter and histogram would take a lock
    of their own per event), read by the registry at each scrape."""

    def __init__(self) -> None:
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.buckets = [0] * (len(_FAST) + 1)  # the last: above every bound
        self.ack_sum = 0.0
        self.created = time.time()

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def acked(self, seconds: float, events: int = 1) -> None:
        """`events` journaled and acked `seconds` after they were received."""
        self.outcomes["journaled"] += events
        self.buckets[bisect.bisect_left(_FAST, seconds)] += events
        self.ack_sum += seconds * events

    def collect(self) -> Iterator[Metric]:
        counted = CounterMetricFamily("qbcallbacks_events", "Events received, by outcome "
                                      "(journaled, duplicate, rejected).", labels=["outcome"])
        for outcome, n in list(self.outcomes.items()):
            counted.add_metric([outcome], n, created=self.created)
        yield counted
        running, cumulative = 0, []
        for bound, n in zip((*map(floatToGoString, _FAST), "+Inf"), list(self.buckets),
                            strict=True):
            running += n
            cumulative.append((bound, float(running)))
        yield HistogramMetricFamily("qbcallbacks_ack_seconds", "From receiving an event to "
                                    "its ack.", buckets=cumulative, sum_value=self.ack_sum)


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.events = EventTally()
        r.register(self.events)
        self.firings = Counter("qbcallbacks_firings", "Firings finished, by final status.",
                               ["status"], registry=r)
        self.queue_depth = Gauge("qbcallbacks_queue_depth",
                                 "Events accepted and not yet matched.", registry=r)
        self.run_duration = Histogram("qbcallbacks_run_duration_seconds",
                                      "How long callback runs took.", buckets=_RUNS, registry=r)
        self.supervisor_calls = Counter("qbcallbacks_supervisor_calls",
                                        "Calls to the supervisor, by method and outcome.",
                                        ["method", "outcome"], registry=r)
        self.supervisor_connected = Gauge("qbcallbacks_supervisor_connected",
                                          "1 while a supervisor connection is open.",
                                          registry=r)

    def watch(self, queue_depth: Callable[[], int], connected: Callable[[], bool]) -> None:
        """Read the gauges from their owners at each scrape."""
        self.queue_depth.set_function(lambda: float(queue_depth()))
        self.supervisor_connected.set_function(lambda: 1.0 if connected() else 0.0)

    def call(self, method: str, outcome: str) -> None:
        self.supervisor_calls.labels(method, outcome).inc()

    def finished(self, status: str, duration: float | None) -> None:
        self.firings.labels(status).inc()
        if duration is not None:
            self.run_duration.observe(duration)

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics in the format the scraper asks for (OpenMetrics when its Accept header
        names it, else Prometheus text), and that format's content type."""
        encoder, kind = choose_encoder(accept or "")
        return encoder(self.registry), kind


class MeteredAuditStore(SqlTrail):
    """The audit trail (mixed with a backend's class), counting each firing's outcome as it
    is recorded."""

    metrics: Metrics | None = None

    def complete(self, firing_id: int, status: str, **outcome: Any) -> None:
        super().complete(firing_id, status, **outcome)
        if self.metrics is not None:
            self.metrics.finished(status, outcome.get("duration"))
