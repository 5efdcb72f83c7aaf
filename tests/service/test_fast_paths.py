"""The service's hot path takes short cuts (an ack from a template, events counted as plain
numbers); each must say exactly what the long way says."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from qbcallbacks.model.events import Event, Job
from qbcallbacks.service.metrics import _FAST, Metrics
from qbcallbacks.service.producers import digest, flat_text
from qbcallbacks.service.quick import quick_event
from qbcallbacks.service.server import answer_line
from qbcallbacks.stream import EventLineError, EventReader

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


_PARAM_VALUES = st.one_of(
    st.sampled_from(["complete", "Complete", "removed", "my_event", "9lives", "a-b", "", "work",
                     "job", "JOB", "globaltime", "shot 1", "caf\u00e9", "\ud800", 'q"\\\n']),
    st.text(max_size=6), st.integers(min_value=-3, max_value=5),
    st.sampled_from([0, 2**63 - 1, 2**63, -(2**63)]), st.none(), st.booleans(),
    st.floats(allow_nan=False), st.dictionaries(st.sampled_from(["id", "name"]),
                                                st.integers(min_value=1, max_value=3),
                                                max_size=2))
_PARAMS = st.dictionaries(st.sampled_from(["seq", "event", "type", "job", "extra", "other"]),
                          _PARAM_VALUES, max_size=6)
_USUAL = st.fixed_dictionaries(
    {"seq": st.integers(min_value=1, max_value=2**63 - 1),
     "event": st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
     "type": st.sampled_from(["job", "work", "subjob", "globaltime"]),
     "job": st.integers(min_value=0, max_value=2**63 - 1)},
    optional={"extra": st.one_of(st.none(), st.integers(min_value=-2**70, max_value=2**70),
                                 st.text(max_size=10),
                                 st.sampled_from(["\ud800", "caf\u00e9", 'q"\\\n']))})


def _long_way(params: dict[str, Any], reader: EventReader,
              ) -> tuple[int, Event, Job | None, str] | None:
    seq = params.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= 2**63 - 1:
        return None
    line = {k: v for k, v in params.items() if k != "seq"}
    try:
        event, job = reader.read(line)
    except EventLineError:
        return None
    return seq, event, job, digest(line)


@given(st.one_of(_PARAMS, _USUAL), st.booleans())
@example({"seq": 1, "event": "complete", "type": "work", "job": 1, "extra": "shot 1"}, True)
@example({"seq": 2, "event": "Removed", "type": "job", "job": 1}, True)
@example({"seq": 3, "event": "complete", "type": "work", "job": 1, "extra": 12}, False)
@example({"seq": 4, "event": "complete", "type": "Work", "job": 1}, False)
@example({"seq": 5, "event": "complete", "type": "work", "job": 1, "extra": "x\ud800"}, False)
@example({"seq": True, "event": "complete", "type": "work", "job": 1}, False)
@example({"seq": 0, "event": 0, "job": 0, "type": None}, False)
def test_the_short_way_reads_an_event_as_the_long_way_does(params: dict[str, Any],
                                                          known: bool) -> None:
    """Same event, same digest, same job attached and forgotten; the usual shape always
    takes the short way, and whatever the long way refuses never does."""
    long_reader, short_reader = EventReader(), EventReader()
    if known:  # the job named by id was given as an object earlier
        for reader in (long_reader, short_reader):
            reader.read({"event": "submitted", "type": "job", "job": {"id": 1, "name": "a"}})
    expected = _long_way(params, long_reader)
    quick = quick_event(params)
    if quick is None:
        usual = (set(params) - {"extra"} == {"seq", "event", "type", "job"}
                 and all(type(params[k]) is int for k in ("seq", "job"))
                 and type(params["event"]) is str
                 and params["event"].isascii() and params["event"].isidentifier()
                 and params["type"] in ("job", "work", "subjob", "globaltime")
                 and 0 <= params["job"] < 2**63 and 1 <= params["seq"] < 2**63
                 and (params.get("extra") is None or type(params["extra"]) is int
                      or (type(params["extra"]) is str and params["extra"].isascii())))
        assert not usual, "the usual shape took the long way"
        return
    assert expected is not None, "the short way took what the long way refuses"
    seq, event, value = quick
    job = short_reader.attached(event)
    assert (seq, event, job, value) == expected
    assert event.model_fields_set == expected[1].model_fields_set
    assert event.model_dump() == expected[1].model_dump()
    assert short_reader.known == long_reader.known
