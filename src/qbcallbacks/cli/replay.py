"""`qbcallbacks replay PATH... --events FILE --dry-run`: which callbacks a recorded stream fires.

The events file is a JSON Lines stream (`qbcallbacks.stream`), read into steps (sequence
number, event, job to attach or update first) or bad lines; the dry run feeds the steps to a
:class:`~qbcallbacks.matching.matcher.Matcher` and prints the firings. Execution consumes the
same steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import click

from ..config.load import expand_callback_path, load_callback_path
from ..errors import Diagnostic
from ..matching.matcher import Firing, Matcher
from ..model.rules import Rule
from ..stream import BadLine, ReplayStep, read_events, stream_lines
from ._session import run_options


def load_rules(paths: Sequence[str], env: Mapping[str, str] | None = None,
               ) -> tuple[tuple[Rule, ...], dict[int, str], tuple[Diagnostic, ...]]:
    """Load the rules of the callback path; also map each rule's position to its directory
    as written on the command line (before `$VAR` expansion), for the output."""
    written: list[str] = []
    for spec in paths:
        written.extend(part.strip() for part in spec.split(",") if part.strip())
    if not written:
        written = expand_callback_path(None, env)
    directories = [expand_callback_path([as_written], env)[0] for as_written in written]
    loaded = load_callback_path(directories, env=env)
    shown = {rule.position: as_written
             for as_written, load in zip(written, loaded.directories, strict=True)
             for rule in load.rules}
    return loaded.rules, shown, loaded.diagnostics


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
@click.option("--dry-run", is_flag=True, help="Print which callbacks fire; run nothing "
              "(the default).")
@click.option("--execute", is_flag=True, help="Run the firings for real.")
@run_options
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], events_path: str, dry_run: bool,
            execute: bool, qbconf: str | None, workdir: str, timeout: float,
            audit_path: str | None, log_dir: str | None, mode: str, progress: bool, fmt: str,
            allow_failures: bool) -> None:
    """Replay a recorded event stream against callback directories.

    Each PATH is a callback directory or a comma-separated list of them; with none, the
    callback path of --qbconf, $QB_CONF or /etc/qb.conf, else $QBDIR/callback. FILE holds one
    JSON event per line:
    {"event": "complete", "type": "work", "job": {"id": 12, "label": "render"}, "extra": "5"}.
    "job" is a job object (its "id" and any keys to set or update) or the id of a job given
    earlier; global events may leave out "job" and "event".

    By default nothing runs: each firing is printed. With --format json each firing is one
    JSON line (JSON Lines, so a long stream can be read as it comes):
    {"seq": N, "job": ID, "callback": NAME, "directory": DIR, "trigger": TEXT}, where seq is
    the 0-based line of the event, job the job the callback is attached to, callback the file
    name or job:<id>#<index> for a job-specific callback (directory null), and directory as
    written on the command line.

    Problems in the callback directories are reported on standard error and the good rules
    still replay; they do not change the exit status. A bad event line is reported with its
    line number and skipped. Exit status: 0, or 1 if any event line was bad; 2 on usage errors.

    With --execute the firings run for real (--workdir, --timeout, --audit, --log-dir, --mode)
    and the summary is printed as simulate prints it (--format json: one JSON object). Each
    event is applied, and what it fired runs to an end, before the next event is applied. The
    exit status is also 1 when a callback ended in error, timeout or crash (unless
    --allow-failures), the audit trail does not hold exactly the firings the dry run
    predicts, or every rule was refused at load and nothing ran.
    """
    from ._targets import default_dirs, refuse_both

    if dry_run and execute:
        raise click.UsageError("--dry-run and --execute exclude each other")
    refuse_both(paths, qbconf)
    if not paths:
        paths = tuple(default_dirs(qbconf))
    if execute:
        ctx.exit(_execute(paths, events_path, timeout=timeout, audit_path=audit_path,
                          log_dir=log_dir, mode=mode, workdir=workdir, progress=progress,
                          fmt=fmt, allow_failures=allow_failures))
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
             audit_path: str | None, log_dir: str | None, mode: str, workdir: str,
             progress: bool, fmt: str, allow_failures: bool) -> int:
    """With --execute: run every firing for real through the dispatcher, then check the audit
    trail against the matcher's prediction; 1 if a line was bad, a callback failed or the
    engine lost a firing."""
    from ._execute import execute_stream

    with click.open_file(events_path, "rb") as stream:
        items = list(read_events(stream_lines(stream)))
    bad = [item for item in items if isinstance(item, BadLine)]
    for item in bad:
        click.echo(f"{events_path}:{item.seq + 1}: bad event line (seq {item.seq}): "
                   f"{item.message}; skipped", err=True)
    steps = [item for item in items if isinstance(item, ReplayStep)]
    code = execute_stream(expand_callback_path(paths), steps, timeout=timeout,
                          audit_path=audit_path, log_dir=log_dir, mode=mode, workdir=workdir,
                          progress=progress, total=len(steps), fmt=fmt,
                          allow_failures=allow_failures)
    return 1 if bad or code else 0


def dry_run_lines(stream: IO[bytes], matcher: Matcher) -> Iterator[tuple[int, Firing] | BadLine]:
    """`dry_run` over the lines of a binary stream."""
    return dry_run(read_events(stream_lines(stream)), matcher)
