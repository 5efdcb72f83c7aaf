"""The service's hot path takes short cuts (an ack from a template, events counted as plain
numbers); each must say exactly what the long way says."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from qbcallbacks.service.metrics import _FAST, Metrics
from qbcallbacks.service.producers import digest, flat_text
from qbcallbacks.service.server import answer_line

_KEYS = st.one_of(st.integers(min_value=-2**63, max_value=2**63), st.text(max_size=8),
                  st.none(), st.booleans())
_RESULTS = st.one_of(
    st.builds(lambda n: {"ack": n}, st.integers(min_value=-5, max_value=2**63)),
    st.builds(lambda n: {"ack": n, "duplicate": True}, st.integers(min_value=1)),
    st.builds(lambda v: {"ack": v}, st.one_of(st.booleans(), st.text(max_size=4),
                                              st.floats(allow_nan=False))),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@given(_KEYS, _RESULTS)
@example(7, {"ack": 7})
@example(True, {"ack": 1})
@example(1, {"ack": False})
def test_an_answer_line_is_the_json_of_the_answer(key: Any, result: Any) -> None:
    line = answer_line(key, result)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"jsonrpc": "2.0", "id": key, "result": result}
    expected = json.dumps({"jsonrpc": "2.0", "id": key, "result": result},
                          separators=(",", ":"), ensure_ascii=False) + "\n"
    assert line == expected.encode()


@given(st.lists(st.one_of(st.sampled_from(_FAST), st.floats(min_value=0, max_value=5)),
                max_size=40),
       st.lists(st.sampled_from(["duplicate", "rejected"]), max_size=5))
def test_the_event_tally_scrapes_as_a_counter_and_a_histogram_would(
        acks: list[float], others: list[str]) -> None:
    metrics = Metrics()
    reference = CollectorRegistry()
    histogram = Histogram("qbcallbacks_ack_seconds", "x", buckets=_FAST, registry=reference)
    for seconds in acks:
        metrics.events.acked(seconds)
        histogram.observe(seconds)
    for outcome in others:
        metrics.events.count(outcome)
    ours = _samples(metrics.text())
    theirs = _samples(generate_latest(reference))
    for name, value in theirs.items():
        if name.startswith("qbcallbacks_ack_seconds_") and "created" not in name:
            assert abs(ours[name] - value) <= 1e-9 * max(1.0, abs(value)), name
    assert ours['qbcallbacks_events_total{outcome="journaled"}'] == len(acks)
    for outcome in ("duplicate", "rejected"):
        assert ours[f'qbcallbacks_events_total{{outcome="{outcome}"}}'] == others.count(outcome)


def _samples(text: bytes) -> dict[str, float]:
    found = {}
    for row in text.decode().splitlines():
        if row and not row.startswith("#"):
            name, _, value = row.rpartition(" ")
            found[name] = float(value)
    return found


_VALUES = st.one_of(st.text(max_size=10), st.sampled_from(["\ud800", 'q"\\\n\x00\u2028']),
                    st.integers(min_value=-2**70, max_value=2**70), st.none(), st.booleans(),
                    st.floats(allow_nan=False), st.dictionaries(st.sampled_from(["id", "name"]),
                                                                st.integers(), max_size=2))
_LINES = st.dictionaries(st.one_of(st.sampled_from(["event", "type", "job", "extra"]),
                                   st.text(max_size=4)), _VALUES, max_size=5)


@given(_LINES)
@example({"type": "work", "event": "complete", "job": 17, "extra": "shot 1"})
@example({"type": "work", "job": True})
@example({})
def test_a_flat_line_is_digested_from_the_same_text_as_json_writes(line: dict[str, Any]) -> None:
    text = flat_text(line)
    expected = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if text is not None:
        assert text == expected
    flat = set(line) <= {"event", "type", "job", "extra"} and all(
        type(v) in (str, int) or v is None for v in line.values())
    assert (text is not None) == flat  # every flat line takes the short way
    assert digest(line) == hashlib.blake2b(expected.encode("utf-8", "surrogatepass"),
                                           digest_size=12).hexdigest()
