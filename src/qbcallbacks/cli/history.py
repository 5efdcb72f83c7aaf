"""`qbcallbacks history`: what the audit trail says about past firings.

Filters combine (all must hold): `--job`, `--callback`, `--status` (repeatable), `--since` and
`--until` (ISO 8601, Unix seconds, or an age such as `90s`, `15m`, `2h`, `7d`). Text output is
one line per firing, oldest first; `--format json` prints one JSON array of firing objects.
Exit status: 0 (even when nothing matches), 2 on a usage error or a missing database.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import click

from ..model.statuses import FIRING_STATUSES
from ._session import DEFAULT_WORKDIR

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


@click.command("history")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False),
              default=f"{DEFAULT_WORKDIR}/audit.db", show_default=True,
              help="Audit database to read.")
@click.option("--job", type=int, default=None, help="Only firings of callbacks attached to JOB.")
@click.option("--callback", default=None, help="Only this callback (file name or job:<id>#<i>).")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(FIRING_STATUSES), help="Only these statuses (repeatable).")
@click.option("--since", default=None, help="Queued at or after this time.")
@click.option("--until", default=None, help="Queued before this time.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many, the newest ones.")
@click.option("--output/--no-output", "show_output", default=False,
              help="Text format: print each run's output excerpt and error under it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def command(audit_path: str, job: int | None, callback: str | None,
            statuses: tuple[str, ...], since: str | None, until: str | None,
            limit: int | None, show_output: bool, fmt: str) -> None:
    """Query the audit trail of callback firings."""
    from ..audit.store import AuditError, AuditStore

    start = parse_time(since) if since else None
    end = parse_time(until) if until else None
    try:
        store = AuditStore(audit_path, readonly=True)
    except AuditError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        rows = store.query(job=job, callback=callback, status=statuses or None, since=start,
                           until=end, limit=limit, newest_first=limit is not None)
    finally:
        store.close()
    if limit is not None:
        rows.reverse()
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    for r in rows:
        code = "-" if r.exit_code is None else str(r.exit_code)
        took = "-" if r.duration is None else f"{r.duration:.3f}s"
        click.echo(f"{r.id:>6}  {_stamp(r.queued_at)}  job {r.job:<6} {r.callback:<24} "
                   f"{r.event.format():<28} {r.status:<9} exit {code:<4} {took}")
        if show_output:
            for text in (r.output, r.error or ""):
                for line in text.rstrip("\n").splitlines():
                    click.echo(f"        | {line}")
    click.echo(f"{len(rows)} firing(s)", err=True)
