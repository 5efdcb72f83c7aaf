"""The JSON Lines event stream: the one place its lines are read and written.

One event per line: `{"event": NAME, "type": TYPE, "job": JOB, "extra": ITEM}`. `JOB` is a
job object (`id` and any `Job` fields to set or update) or the id of a job given as an object
on an earlier line; global events may leave out `job` (0) and `event` (the type). `replay`
reads streams with :func:`read_events`; a recorded session is written back with
:func:`event_line`, so what the audit trail recorded replays as it ran.

A `removed` job event ends what the stream knows of that job: a later line that names it by
id sees it for the first time again, with default fields (as the matcher does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from .errors import QbCallbacksError
from .lang import parse_trigger
from .model._base import trusted
from .model.events import MAX_ID, Event, Job
from .model.triggers import EVENT_TYPES, GLOBAL_TYPES, NAME_RE, normalise_name

EVENT_KEYS = frozenset({"event", "type", "job", "extra"})
#: The longest line an events file may have; the service takes lines of the same size.
MAX_EVENT_LINE = 1 << 20
JOB_KEYS = frozenset(Job.model_fields)


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One good line: attach or update `job` (the job as known after this line), then
    observe `event`. `seq` is the 0-based line number; `given` holds the job keys the line
    itself gave (none when it named the job by id), which an executing replay applies to
    the supervisor's state, keeping what callbacks changed since."""

    seq: int
    event: Event
    job: Job | None
    given: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a valid event; `seq` is its 0-based line number."""

    seq: int
    message: str


@dataclass(frozen=True, slots=True)
class OverlongLine:
    """Stands for a line longer than `limit` bytes, which is never held whole."""

    limit: int


class LineSource(Protocol):
    """A binary file or socket file: what `stream_lines` reads."""

    def readline(self, size: int = -1, /) -> bytes: ...


def stream_lines(stream: LineSource, limit: int = MAX_EVENT_LINE,
                 ) -> Iterator[bytes | OverlongLine]:
    """The lines of a binary stream, line ends removed, each read at most `limit` bytes at a
    time. A longer line (or a stream with no line end at all, such as a device) ends the
    reading: its place is taken by an `OverlongLine`, which `read_events` reports."""
    while raw := stream.readline(limit + 1):
        if len(raw) > limit and not raw.endswith(b"\n"):
            yield OverlongLine(limit)
            return
        yield raw.rstrip(b"\r\n")


class EventLineError(QbCallbacksError):
    """An events file line that cannot be read as an event."""


def event_line(event: Event, job: Job | Mapping[str, Any] | None = None) -> str:
    """One stream line for `event`, with `job` (a model or its dumped fields) as an object."""
    data: Any = job.model_dump(mode="json") if isinstance(job, Job) else job
    return json.dumps({"event": event.name, "type": event.type,
                       "job": dict(data) if data else event.job, "extra": event.extra})


def read_events(lines: Iterable[str | bytes | OverlongLine]) -> Iterator[ReplayStep | BadLine]:
    """Read JSON Lines events; blank lines are skipped (they still count in `seq`).

    A job given as an object is remembered, so later lines may name it by id; an object for a
    known id updates only the keys it gives.
    """
    known: dict[int, Job] = {}
    removed: set[int] = set()
    for seq, raw in enumerate(lines):
        if isinstance(raw, OverlongLine):
            yield BadLine(seq, f"longer than {raw.limit} bytes; the rest of the stream "
                               "is not read")
            return
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            yield BadLine(seq, f"not UTF-8 (byte {exc.start + 1})")
            continue
        if seq == 0:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            step = _read_line(text, known, removed)
        except EventLineError as exc:
            yield BadLine(seq, str(exc))
            continue
        event = step.event
        if event.type == "job" and event.name == "removed" and event.job in known:
            del known[event.job]
            removed.add(event.job)
        yield ReplayStep(seq, event, step.job, step.given)


class EventReader:
    """Reads events one at a time from a stream that never ends (the service): remembers the
    jobs given as objects, as `read_events` does, and forgets a job at its `removed` event.

    Unlike a replay, a job named by an id never seen is accepted (the engine may know it from
    before a restart); the event then carries no job object.
    """

    def __init__(self) -> None:
        self.known: dict[int, Job] = {}
        self.removed: set[int] = set()

    def read(self, data: Mapping[str, Any]) -> tuple[Event, Job | None]:
        """The event of one decoded line and the job to attach or update first; raises
        `EventLineError` saying what is wrong."""
        step = _read_data(data, self.known, self.removed, lenient=True)
        event = step.event
        if event.type == "job" and event.name == "removed":
            self.known.pop(event.job, None)
        return event, step.job

    def attached(self, event: Event) -> Job | None:
        """The job `read` gives with a valid event whose line named its job by id: the one
        given as an object earlier, if any (forgotten at its `removed` event)."""
        job = self.known.get(event.job)
        if job is not None and event.name == "removed" and event.type == "job":
            del self.known[event.job]
        return job


def _read_line(text: str, known: dict[int, Job], removed: set[int]) -> ReplayStep:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventLineError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a huge number, arrays nested too deep
        raise EventLineError(f"not readable JSON: {str(exc)[:80]}") from None
    return _read_data(data, known, removed)


def _read_data(data: object, known: dict[int, Job], removed: set[int],
               lenient: bool = False) -> ReplayStep:
    if not isinstance(data, dict):
        raise EventLineError("an event line is a JSON object such as "
                             '{"event": "complete", "type": "job", "job": 12}')
    if not EVENT_KEYS.issuperset(data):
        unknown = sorted(set(data) - EVENT_KEYS)
        raise EventLineError(f"unknown key(s) {', '.join(map(repr, unknown))}; an event has "
                             "'event', 'type', 'job' and 'extra'")
    typ = data.get("type")
    if not isinstance(typ, str) or not typ.isascii() or typ.lower() not in EVENT_TYPES:
        raise EventLineError(f"'type' must be one of {', '.join(EVENT_TYPES)}, not {typ!r}")
    typ = typ.lower()
    is_global = typ in GLOBAL_TYPES
    name = data.get("event", typ if is_global else None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EventLineError(f"'event' must be an event name (an identifier), not {name!r}")
    value = data.get("job", 0 if is_global else None)
    job_id, job = _read_job(value, known, removed, lenient)
    extra = data.get("extra")
    if isinstance(extra, float):
        raise EventLineError(f"'extra' {extra!r} is not a whole number; an extra that is not "
                             f"one is written as a string, such as \"{extra}\"")
    if isinstance(extra, bool) or not isinstance(extra, str | int | None):
        raise EventLineError(f"'extra' must be a string or a whole number, not {extra!r}")
    text = None if extra is None else str(extra)
    event = fast_event(name, typ, job_id, text)
    if event is None:
        try:
            event = Event(name=name, type=typ, job=job_id, extra=text)
        except ValidationError as exc:
            raise EventLineError(_words(exc)) from None
    return ReplayStep(0, event, job, frozenset(value) if isinstance(value, dict) else frozenset())


def fast_event(name: object, typ: object, job: object, extra: object) -> Event | None:
    """The `Event` of the common well-formed shape, built without pydantic's validation (a
    service reads one per request); None for anything else, which the model then judges.
    Checks exactly what the model's validators check, and a property test holds it to that."""
    if (type(name) is str and type(typ) is str and type(job) is int
            and (extra is None or (type(extra) is str and extra.isascii()))
            and typ in EVENT_TYPES and 0 <= job <= MAX_ID and NAME_RE.match(name)):
        return trusted(Event, name=normalise_name(name), type=typ, job=job, extra=extra)
    return None


def _read_job(value: object, known: dict[int, Job], removed: set[int], lenient: bool = False,
              ) -> tuple[int, Job | None]:
    """The job id a line is about and the job to attach or update first (None: none)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value in known:
            return value, known[value]
        if value == 0 or value in removed or (lenient and value > 0):
            # 0 is no job; a removed job named again is seen for the first time, with
            # default fields.
            return value, None
        raise EventLineError(f"job {value} has not been seen: give it as an object "
                             f'{{"id": {value}, ...}} on its first line')
    if not isinstance(value, dict):
        raise EventLineError(f"'job' must be a job object with an 'id' or a job id, not "
                             f"{value!r}")
    job_id = value.get("id")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 1:
        raise EventLineError(f"a job object needs an 'id' that is a job id (1 or more; 0 means "
                             f"no job and is never attached), not {job_id!r}")
    unknown = sorted(set(value) - JOB_KEYS)
    if unknown:
        raise EventLineError(f"unknown job key(s) {', '.join(map(repr, unknown))}; a job has "
                             f"{', '.join(sorted(JOB_KEYS))}")
    try:
        job = known[job_id].updated(value) if job_id in known else Job.model_validate(value)
    except ValidationError as exc:
        raise EventLineError(_words(exc)) from None
    for index, callback in enumerate(job.callbacks):
        try:
            parse_trigger(callback.triggers)
        except QbCallbacksError as exc:
            raise EventLineError(f"job {job_id} callback {index}: bad triggers "
                                 f"{callback.triggers!r}: {_first_line(exc)}") from None
    known[job_id] = job
    return job_id, job


def _words(exc: ValidationError) -> str:
    out = []
    for e in exc.errors():
        where = ".".join(map(str, e["loc"]))
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{where or 'value'}: {msg}")
    return "; ".join(out)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
