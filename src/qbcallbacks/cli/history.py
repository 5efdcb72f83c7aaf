"""`qbcallbacks history`: what the audit trail says about past firings.

Filters combine (all must hold): `--job`, `--callback`, `--status` (repeatable), `--since` and
`--until` (ISO 8601, Unix seconds, or an age such as `90s`, `15m`, `2h`, `7d`), and `--session`
(default: the latest run, so farms that reuse job ids do not mix). Text output is a header then
one line per firing, oldest first; `--format json` prints one JSON array of firing objects,
`--json-lines` one object per line; `--follow` keeps printing firings as they are recorded.
Exit status: 0 (even when nothing matches), 2 on a usage error or a missing database.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from ..audit.store import AuditStore, FiringRecord
from ..model.statuses import FINAL_FIRING_STATUSES, FIRING_STATUSES
from ._session import DEFAULT_WORKDIR
from ._targets import SetupError

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Rows a poll of `--follow` reads at most; a longer backlog is read over the next polls.
FOLLOW_PAGE = 1000
#: Pending firings `--follow` watches for their outcome at most (the newest ones).
FOLLOW_PENDING = 1000


def parse_time(text: str, now: float | None = None) -> float:
    """Unix time from an age (`15m`), Unix seconds, or an ISO 8601 date/time (local if naive)."""
    now = time.time() if now is None else now
    value = text.strip()
    age = _AGE.match(value)
    if age:
        return now - float(age.group(1)) * _UNITS[age.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time: use 2024-05-01T12:00, Unix seconds, "
                                 "or an age such as 15m, 2h, 7d") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def _stamp(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    return None if value is None else parse_time(value)  # click names the option on error


def _session_option(ctx: click.Context, param: click.Parameter, value: str) -> str | int:
    text = value.strip().lower()
    if text in ("latest", "all"):
        return text
    try:
        number = int(text)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use a session number, 'latest' or 'all'") from None
    if number < 1:
        raise click.BadParameter(f"{value!r}: session numbers start at 1")
    return number


HEADER = (f"{'id':>6}  {'queued':<19}  {'job':<10} {'callback':<24} {'event':<28} "
          f"{'status':<9} {'exit':<9} took")


def _line(r: FiringRecord) -> str:
    code = "-" if r.exit_code is None else str(r.exit_code)
    took = "-" if r.duration is None else f"{r.duration:.3f}s"
    return (f"{r.id:>6}  {_stamp(r.queued_at)}  job {r.job:<6} {r.callback:<24} "
            f"{r.event.format():<28} {r.status:<9} exit {code:<4} {took}")


@click.command("history")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False),
              default=f"{DEFAULT_WORKDIR}/audit.db", show_default=True,
              help="Audit database to read.")
@click.option("--session", "session", default="latest", show_default=True,
              callback=_session_option, metavar="N|latest|all",
              help="Which run's firings: a session number, the latest, or all.")
@click.option("--job", type=int, default=None, help="Only firings of callbacks attached to JOB.")
@click.option("--callback", default=None, help="Only this callback (file name or job:<id>#<i>).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(FIRING_STATUSES), help="Only these statuses (repeatable).")
@click.option("--since", default=None, callback=_time_option,
              help="Queued at or after this time (ISO 8601, Unix seconds, or an age: 1h, 2d).")
@click.option("--until", default=None, callback=_time_option,
              help="Queued before this time (same forms as --since).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many, the newest ones.")
@click.option("--output/--no-output", "show_output", default=False,
              help="Text format: print each run's output excerpt and error under it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "json-lines"]),
              default="text", show_default=True, help="Output format.")
@click.option("--json-lines", "json_lines", is_flag=True,
              help="One JSON object per line (same as --format json-lines).")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new firings as they are recorded (Ctrl-C to stop).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, hidden=True)
@click.option("--globals", "show_globals", is_flag=True,
              help="List the trail's global callbacks (in force, removed, refused) instead.")
def command(audit_path: str, session: str | int, job: int | None, callback: str | None,
            statuses: tuple[str, ...], since: float | None, until: float | None,
            limit: int | None, show_output: bool, fmt: str, json_lines: bool, follow: bool,
            interval: float, show_globals: bool) -> None:
    """Query the audit trail of callback firings (by default, of the latest run)."""
    import sqlite3

    from ..audit.backends import open_audit
    from ..audit.store import AuditError

    if json_lines:
        fmt = "json-lines"
    if follow and fmt == "json":
        raise click.UsageError("--follow prints a stream: use --format text or --json-lines")
    try:
        store = open_audit(audit_path, readonly=True)
    except AuditError as exc:
        raise SetupError(str(exc)) from None
    try:
        if show_globals:
            _print_globals(store, fmt)
            return
        _query_and_print(store, session, job=job, callback=callback,
                         statuses=statuses, since=since, until=until, limit=limit,
                         show_output=show_output, fmt=fmt, follow=follow, interval=interval)
    except sqlite3.Error as exc:
        raise SetupError(f"{audit_path} is not a readable audit database ({exc})") from None
    finally:
        store.close()


def _print_globals(store: AuditStore, fmt: str) -> None:
    """Every global callback the trail knows, oldest first, with its state."""
    rows = store.global_callbacks().rows()
    if fmt == "json":
        click.echo(json.dumps([r.model_dump() for r in rows]))
        return
    if fmt == "json-lines":
        for r in rows:
            click.echo(json.dumps(r.model_dump()))
        return
    click.echo(f"{'id':>6}  {'submitted':<19}  {'state':<8} {'trigger':<28} language  why")
    for r in rows:
        click.echo(f"{r.id:>6}  {_stamp(r.submitted_at):<19}  {r.state:<8} {r.trigger:<28} "
                   f"{r.language:<9} {r.reason or ''}")
    click.echo(f"{len(rows)} global callback(s)")


def _query_and_print(store: AuditStore, session: str | int, *, job: int | None,
                     callback: str | None, statuses: tuple[str, ...], since: float | None,
                     until: float | None, limit: int | None, show_output: bool, fmt: str,
                     follow: bool, interval: float) -> None:
    def chosen() -> int | None:
        if session == "all":
            return None
        if session == "latest":
            ids = [s[0] for s in store.sessions()]
            return ids[-1] if ids else 0
        return int(session)

    def fetch(**bounds: Any) -> list[FiringRecord]:
        return store.query(job=job, callback=callback, status=statuses or None, since=since,
                           until=until, session=chosen(), **bounds)

    def emit(rows: list[FiringRecord]) -> None:
        for r in rows:
            if fmt == "json-lines":
                click.echo(json.dumps(r.to_json()))
                continue
            click.echo(_line(r))
            if show_output:
                for text in (r.output, r.error or ""):
                    for line in text.rstrip("\n").splitlines():
                        click.echo(f"        | {line}")

    rows = fetch(limit=limit, newest_first=limit is not None)
    if limit is not None:
        rows.reverse()
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if fmt == "text":
        click.echo(HEADER)
    emit(rows)
    if not follow:
        if fmt == "text":
            which = "all sessions" if session == "all" else f"session {chosen()}"
            click.echo(f"{len(rows)} firing(s), {which}", err=True)
        return
    try:
        _follow(fetch, emit, rows, interval)
    except KeyboardInterrupt:
        return


def _follow(fetch: Callable[..., list[FiringRecord]],
            emit: Callable[[list[FiringRecord]], None], shown: list[FiringRecord],
            interval: float) -> None:
    """Tail the trail by id: each poll reads at most a page of newer firings, and the pending
    ones already shown by id (a pending firing is shown again when its status changes), so a
    poll never reads the session again."""
    last = max((r.id for r in shown), default=0)
    pending = {r.id: r.status for r in shown if r.status not in FINAL_FIRING_STATUSES}
    while True:
        sys.stdout.flush()
        time.sleep(interval)
        changed = []
        if pending:
            watched = sorted(pending)[-FOLLOW_PENDING:]
            for r in fetch(ids=watched):
                if r.status != pending[r.id]:
                    changed.append(r)
            pending = {i: pending[i] for i in watched}
        fresh = fetch(after_id=last, limit=FOLLOW_PAGE)
        for r in changed + fresh:
            if r.status in FINAL_FIRING_STATUSES:
                pending.pop(r.id, None)
            else:
                pending[r.id] = r.status
        last = max((r.id for r in fresh), default=last)
        emit(sorted(changed, key=lambda r: r.id) + fresh)
