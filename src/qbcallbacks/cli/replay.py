"""`qbcallbacks replay PATH... --events FILE --dry-run`: which callbacks a recorded stream fires.

The events file is JSON Lines, one event per line:
`{"event": "complete", "type": "work", "job": {...} or ID, "extra": "5"}`. `read_events` turns
it into a stream of steps (sequence number, event, job to attach or update first) or bad lines;
the dry run feeds the steps to a :class:`~qbcallbacks.engine.matcher.Matcher` and prints the
firings. Execution (issue 5) consumes the same steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import click
from pydantic import ValidationError

from ..config.load import expand_callback_path, load_directory
from ..errors import Diagnostic, QbCallbacksError
from ..lang import parse_trigger
from ..matching.matcher import Firing, Matcher
from ..model.events import Event, Job
from ..model.rules import Rule
from ..model.triggers import EVENT_TYPES, GLOBAL_TYPES, NAME_RE
from ._session import run_options

_EVENT_KEYS = frozenset({"event", "type", "job", "extra"})
_JOB_KEYS = frozenset(Job.model_fields)


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One good line: attach or update `job` (the job as known after this line), then
    observe `event`. `seq` is the 0-based line number."""

    seq: int
    event: Event
    job: Job | None


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a valid event; `seq` is its 0-based line number."""

    seq: int
    message: str


class EventLineError(QbCallbacksError):
    """An events file line that cannot be read as an event."""


def read_events(lines: Iterable[str | bytes]) -> Iterator[ReplayStep | BadLine]:
    """Read JSON Lines events; blank lines are skipped (they still count in `seq`).

    A job given as an object is remembered, so later lines may name it by id; an object for a
    known id updates only the keys it gives.
    """
    known: dict[int, Job] = {}
    for seq, raw in enumerate(lines):
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
            yield _read_line(seq, text, known)
        except EventLineError as exc:
            yield BadLine(seq, str(exc))


def _read_line(seq: int, text: str, known: dict[int, Job]) -> ReplayStep:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventLineError(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a huge number, arrays nested too deep
        raise EventLineError(f"not readable JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise EventLineError("an event line is a JSON object such as "
                             '{"event": "complete", "type": "job", "job": 12}')
    unknown = sorted(set(data) - _EVENT_KEYS)
    if unknown:
        raise EventLineError(f"unknown key(s) {', '.join(map(repr, unknown))}; an event has "
                             "'event', 'type', 'job' and 'extra'")
    typ = data.get("type")
    if not isinstance(typ, str) or typ.lower() not in EVENT_TYPES:
        raise EventLineError(f"'type' must be one of {', '.join(EVENT_TYPES)}, not {typ!r}")
    typ = typ.lower()
    is_global = typ in GLOBAL_TYPES
    name = data.get("event", typ if is_global else None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EventLineError(f"'event' must be an event name (an identifier), not {name!r}")
    job = _read_job(data.get("job", 0 if is_global else None), known)
    extra = data.get("extra")
    if isinstance(extra, bool) or not isinstance(extra, str | int | None):
        raise EventLineError(f"'extra' must be a string or a number, not {extra!r}")
    try:
        event = Event(name=name, type=typ, job=0 if job is None else job.id,
                      extra=None if extra is None else str(extra))
    except ValidationError as exc:
        raise EventLineError(_words(exc)) from None
    return ReplayStep(seq, event, job)


def _read_job(value: object, known: dict[int, Job]) -> Job | None:
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            return None
        if value not in known:
            raise EventLineError(f"job {value} has not been seen: give it as an object "
                                 f'{{"id": {value}, ...}} on its first line')
        return known[value]
    if not isinstance(value, dict):
        raise EventLineError(f"'job' must be a job object with an 'id' or a job id, not "
                             f"{value!r}")
    job_id = value.get("id")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 0:
        raise EventLineError(f"a job object needs an 'id' that is a job id, not {job_id!r}")
    unknown = sorted(set(value) - _JOB_KEYS)
    if unknown:
        raise EventLineError(f"unknown job key(s) {', '.join(map(repr, unknown))}; a job has "
                             f"{', '.join(sorted(_JOB_KEYS))}")
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
    return job


def _words(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
                     for e in exc.errors())


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_rules(paths: Sequence[str], env: Mapping[str, str] | None = None,
               ) -> tuple[tuple[Rule, ...], dict[int, str], tuple[Diagnostic, ...]]:
    """Load the rules of the callback path; also map each rule's position to its directory
    as written on the command line (before `$VAR` expansion), for the output."""
    written: list[str] = []
    for spec in paths:
        written.extend(part.strip() for part in spec.split(",") if part.strip())
    if not written:
        written = expand_callback_path(None, env)
    rules: list[Rule] = []
    shown: dict[int, str] = {}
    diagnostics: list[Diagnostic] = []
    for as_written in written:
        (directory,) = expand_callback_path([as_written], env)
        load = load_directory(directory, position=len(rules))
        for rule in load.rules:
            shown[rule.position] = as_written
        rules.extend(load.rules)
        diagnostics.extend(load.diagnostics)
    return tuple(rules), shown, tuple(diagnostics)


def dry_run(steps: Iterable[ReplayStep | BadLine], matcher: Matcher,
            ) -> Iterator[tuple[int, Firing] | BadLine]:
    """The firings of each step, in order, with the step's `seq`; bad lines pass through."""
    for step in steps:
        if isinstance(step, BadLine):
            yield step
            continue
        for firing in matcher.observe(step.event, step.job):
            yield step.seq, firing


def firing_json(seq: int, firing: Firing, shown: Mapping[int, str]) -> dict[str, Any]:
    """The object of the `--format json` contract."""
    rule = firing.rule
    return {
        "seq": seq,
        "job": firing.job,
        "callback": firing.callback,
        "directory": None if rule is None else shown.get(rule.position, rule.directory),
        "trigger": firing.trigger,
    }


def _firing_text(seq: int, firing: Firing, shown: Mapping[int, str]) -> str:
    data = firing_json(seq, firing, shown)
    where = "" if data["directory"] is None else f" in {data['directory']}"
    return (f"{seq}: {data['callback']}{where} for job {firing.job} "
            f"({firing.trigger} <- {firing.event.format()})")


@click.command("replay")
@click.argument("paths", nargs=-1)
@click.option("--events", "events_path", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="JSON Lines file of events ('-' for standard input).")
@click.option("--dry-run", is_flag=True, help="Print which callbacks fire; run nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@run_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], events_path: str, dry_run: bool,
            fmt: str, timeout: float, audit_path: str | None, log_dir: str | None,
            mode: str) -> None:
    """Replay a recorded event stream against callback directories.

    Each PATH is a callback directory or a comma-separated list of them; with none,
    $QBDIR/callback. FILE holds one JSON event per line:
    {"event": "complete", "type": "work", "job": {"id": 12, "label": "render"}, "extra": "5"}.
    "job" is a job object (its "id" and any keys to set or update) or the id of a job given
    earlier; global events may leave out "job" and "event".

    With --format json, each firing is one line:
    {"seq": N, "job": ID, "callback": NAME, "directory": DIR, "trigger": TEXT}, where seq is
    the 0-based line of the event, job the job the callback is attached to, callback the file
    name or job:<id>#<index> for a job-specific callback (directory null), and directory as
    written on the command line.

    Problems in the callback directories are reported on standard error and the good rules
    still replay; they do not change the exit status. A bad event line is reported with its
    line number and skipped. Exit status: 0, or 1 if any event line was bad; 2 on usage errors.

    Without --dry-run the firings run for real (--timeout, --audit, --log-dir, --mode), the
    summary ends with the audit database and callback logs, and the exit status is also 1
    when the audit trail does not hold exactly the firings the dry run predicts.
    """
    if not dry_run:
        ctx.exit(_execute(paths, events_path, timeout=timeout, audit_path=audit_path,
                          log_dir=log_dir, mode=mode))
    rules, shown, diagnostics = load_rules(paths)
    for diagnostic in diagnostics:
        click.echo(diagnostic.render(), err=True)
    matcher = Matcher(rules)
    bad = 0
    with click.open_file(events_path, "rb") as stream:
        for item in dry_run_lines(stream, matcher):
            if isinstance(item, BadLine):
                bad += 1
                click.echo(f"{events_path}:{item.seq + 1}: bad event line (seq {item.seq}): "
                           f"{item.message}; skipped", err=True)
                continue
            seq, firing = item
            if fmt == "json":
                click.echo(json.dumps(firing_json(seq, firing, shown)))
            else:
                click.echo(_firing_text(seq, firing, shown))
    ctx.exit(1 if bad else 0)


def _execute(paths: Sequence[str], events_path: str, *, timeout: float,
             audit_path: str | None, log_dir: str | None, mode: str) -> int:
    """Without --dry-run: run every firing for real through the dispatcher (issue 5), then
    check the audit trail against the matcher's prediction; 1 if a line was bad or the
    engine lost a firing."""
    from ._execute import execute_stream

    with click.open_file(events_path, "rb") as stream:
        items = list(read_events(raw.rstrip(b"\r\n") for raw in stream))
    bad = [item for item in items if isinstance(item, BadLine)]
    for item in bad:
        click.echo(f"{events_path}:{item.seq + 1}: bad event line (seq {item.seq}): "
                   f"{item.message}; skipped", err=True)
    steps = [(item.event, item.job) for item in items if isinstance(item, ReplayStep)]
    code = execute_stream(expand_callback_path(paths), steps, timeout=timeout,
                          audit_path=audit_path, log_dir=log_dir, mode=mode, total=len(steps))
    return 1 if bad or code else 0


def dry_run_lines(stream: IO[bytes], matcher: Matcher) -> Iterator[tuple[int, Firing] | BadLine]:
    """`dry_run` over the lines of a binary stream, line ends removed."""
    lines = (raw.rstrip(b"\r\n") for raw in stream)
    return dry_run(read_events(lines), matcher)
