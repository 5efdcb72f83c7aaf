"""The JSON Lines event stream: one reader, one writer, the job-field checks, the
removed-job rule and the mail fields a replay line may carry."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event, Job
from qbcallbacks.stream import (
    MAX_EVENT_LINE,
    BadLine,
    OverlongLine,
    ReplayStep,
    event_line,
    fast_event,
    read_events,
    stream_lines,
)


def steps(*lines: object) -> list[ReplayStep | BadLine]:
    return list(read_events(json.dumps(line) for line in lines))


def bad(line: object) -> str:
    [item] = steps(line)
    assert isinstance(item, BadLine), item
    return item.message


def test_written_lines_read_back_as_the_same_event_and_job() -> None:
    job = Job(id=7, pgrp=3, pid=3, label="comp", name="c", status="blocked", user="ann",
              email="ann@example.org")
    event = Event(name="complete", type="work", job=7, extra="1-10")
    [step] = list(read_events([event_line(event, job), event_line(event)]))[:1]
    assert isinstance(step, ReplayStep)
    assert (step.event, step.job) == (event, job)
    assert json.loads(event_line(event)) == {"event": "complete", "type": "work", "job": 7,
                                             "extra": "1-10"}


def test_user_and_email_are_job_fields() -> None:
    [step] = steps({"event": "submit", "type": "job",
                    "job": {"id": 4, "user": "bob", "email": "bob@example.org"}})
    assert isinstance(step, ReplayStep) and step.job is not None
    assert (step.job.user, step.job.email) == ("bob", "bob@example.org")


@pytest.mark.parametrize(("job", "words"), [
    ({"id": 0}, "0 means no job"),
    ({"id": 5, "pgrp": -5}, "pgrp -5 is not a job id"),
    ({"id": 5, "pgrp": 0}, "pgrp 0 is not a job id"),
    ({"id": 5, "pid": 5}, "cannot be its own parent"),
    ({"id": 5, "pid": -1}, "pid -1 is not a job id"),
    ({"id": 5, "status": "sleeping"}, "unknown status 'sleeping'"),
    ({"id": 5, "label": "my-render"}, "cannot be named by a trigger"),
    ({"id": 5, "label": "42"}, "all digits"),
    ({"id": 5, "label": "Self"}, "keyword"),
    # Ids are stored as 64-bit integers; text must be writable as UTF-8.
    ({"id": 2**63}, "is over 9223372036854775807, the largest job id"),
    ({"id": 5, "pid": 2**63}, "pid 9223372036854775808 is not a job id"),
    ({"id": 5, "pgrp": 2**64}, "pgrp 18446744073709551616 is not a job id"),
    ({"id": 5, "name": "a\ud800"}, "the job's name holds a lone surrogate (U+D800)"),
    ({"id": 5, "label": "\udcff"}, "the job's label holds a lone surrogate (U+DCFF)"),
    ({"id": 5, "email": "x\udfff@y"}, "the job's email holds a lone surrogate"),
    ({"id": 5, "callbacks": [{"triggers": "done-job-self", "language": "qube",
                              "code": "\ud800"}]}, "code holds a lone surrogate"),
])
def test_job_fields_are_checked_with_a_clear_reason(job: dict[str, object], words: str) -> None:
    assert words in bad({"event": "submit", "type": "job", "job": job})


def test_a_float_extra_says_to_write_it_as_a_string() -> None:
    message = bad({"event": "dummy", "type": "time", "job": 0, "extra": 1.5})
    assert "not a whole number" in message and '"1.5"' in message


def test_a_removed_job_named_again_comes_back_with_default_fields() -> None:
    items = steps(
        {"event": "submit", "type": "job", "job": {"id": 5, "label": "render", "pgrp": 2,
                                                   "pid": 2}},
        {"event": "removed", "type": "job", "job": 5},
        {"event": "running", "type": "job", "job": 5})
    assert all(isinstance(i, ReplayStep) for i in items)
    assert items[2].job is None  # type: ignore[union-attr]
    matcher = Matcher()
    for item in items:
        assert isinstance(item, ReplayStep)
        matcher.observe(item.event, item.job)
    assert matcher.job(5) == Job(id=5)


def test_a_job_never_given_is_still_an_error_and_job_zero_is_no_job() -> None:
    assert "has not been seen" in bad({"event": "complete", "type": "job", "job": 9})
    [step] = steps({"type": "global", "job": 0})
    assert isinstance(step, ReplayStep) and step.job is None and step.event.job == 0


def test_job_zero_is_never_attached_by_the_model() -> None:
    with pytest.raises(ValueError, match="never attached"):
        Job(id=0)


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
       st.integers(min_value=8, max_value=48), st.booleans())
def test_stream_lines_cut_only_at_line_ends_and_stop_at_the_first_long_line(
        lines: list[bytes], limit: int, last_end: bool) -> None:
    data = b"\n".join(lines) + (b"\n" if last_end else b"")
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()
    expected: list[bytes | OverlongLine] = []
    for line in pieces if data else []:
        if len(line) > limit:
            expected.append(OverlongLine(limit))
            break
        expected.append(line.rstrip(b"\r"))
    assert list(stream_lines(io.BytesIO(data), limit)) == expected


def test_a_long_line_is_reported_once_and_ends_the_reading() -> None:
    good = b'{"event": "submit", "type": "job", "job": {"id": 1}}\n'
    data = good + b"x" * 100 + b"\n" + good
    steps = list(read_events(stream_lines(io.BytesIO(data), limit=len(good))))
    assert isinstance(steps[0], ReplayStep) and steps[0].event.job == 1
    assert steps[1:] == [BadLine(1, f"longer than {len(good)} bytes; the rest of the stream "
                                    "is not read")]
    # A line of exactly the limit, its line end not counted, is whole.
    assert list(stream_lines(io.BytesIO(good * 2), limit=len(good) - 1)) == [good[:-1]] * 2
    assert MAX_EVENT_LINE == 1 << 20  # the service's line limit too


def test_event_ids_and_extras_are_bounded_like_jobs() -> None:
    with pytest.raises(ValueError, match="less than or equal to 9223372036854775807"):
        Event(name="complete", type="job", job=2**63)
    assert "the event's extra holds a lone surrogate" in bad(
        {"event": "complete", "type": "work", "job": {"id": 1}, "extra": "f\ud800"})
    [ok] = steps({"event": "complete", "type": "job", "job": {"id": 2**63 - 1, "name": "é"}})
    assert isinstance(ok, ReplayStep) and ok.event.job == 2**63 - 1


_NAMES = st.one_of(st.sampled_from(["complete", "Complete", "FAILED", "running", "my_event",
                                    "_x", "9lives", "a-b", "", "done\n", "caf\u00e9"]),
                   st.text(max_size=12), st.integers(), st.none())
_TYPES = st.one_of(st.sampled_from(["job", "work", "subjob", "Work", "JOB", "globaltime",
                                    "nope", ""]), st.text(max_size=8), st.integers())
_JOBS = st.one_of(st.integers(min_value=-2, max_value=2**64), st.booleans(),
                  st.sampled_from([0, 1, 2**63 - 1, 2**63]), st.floats(), st.text(max_size=3))
_EXTRAS = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["\ud800", "x\udfff"]),
                    st.integers(), st.booleans())


@given(_NAMES, _TYPES, _JOBS, _EXTRAS)
@example("complete", "work", 5, "shot1")
@example("Complete", "job", 2**63 - 1, None)
@example("complete", "work", 2**63, "x")
@example("complete", "work", True, None)
@example("complete", "work", 1, "\ud800")
def test_the_fast_event_path_builds_only_what_the_model_would_build_alike(
        name: object, typ: object, job: object, extra: object) -> None:
    fast = fast_event(name, typ, job, extra)
    try:
        validated: Event | None = Event(name=name, type=typ, job=job, extra=extra)  # type: ignore[arg-type]
    except ValidationError:
        validated = None
    if fast is not None:
        assert validated is not None, "the fast path took what the model refuses"
        assert fast == validated
        assert fast.model_fields_set == validated.model_fields_set
        assert fast.model_dump() == validated.model_dump()
    well_formed = (isinstance(name, str) and name.isascii() and name.isidentifier()
                   and typ in ("job", "work", "subjob", "globaltime") and type(job) is int
                   and 0 <= job < 2**63 and (extra is None or (type(extra) is str
                                                            and extra.isascii())))
    if well_formed:  # the common shape never pays for the model
        assert fast is not None
