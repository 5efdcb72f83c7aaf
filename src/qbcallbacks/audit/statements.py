"""The statements both trail backends share, in each backend's placeholder, and the firing
record read back from their rows (used by `audit.sql`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple, Protocol

from ..model.events import Event
from .records import FiringRecord

COLUMNS = ("id, session, event_seq, ordinal, event_name, event_type, event_job, event_extra, "
           "job, callback, directory, trigger, language, code, status, exit_code, output, error, "
           "queued_at, started_at, finished_at, duration, attempts")


class Rows(Protocol):
    """What a statement gives back, on either driver."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Statements(NamedTuple):
    """The shared statements in one backend's placeholder, scoped to a trail or not."""

    last_session: str
    close_session: str
    insert_events: str
    insert_firing: str
    start: str
    #: A run mark: attempts raised to the mark's (never lowered), its start time.
    mark: str
    complete: str
    count_orphans: str
    adopt_orphans: str
    claimed: str
    sessions: str
    #: `WHERE` opening of a trail-wide read ("WHERE trail = ?", or "WHERE 1=1").
    where: str
    #: The placeholder itself, for statements built at the call.
    param: str = "?"


@cache
def statements(param: str, scoped: bool) -> Statements:
    """The shared statements with `param` as the placeholder; `scoped` ones carry and filter
    on a `trail` column first (several trails in one database)."""
    col = "trail, " if scoped else ""
    val = "?," if scoped else ""
    only = "trail = ? AND " if scoped else ""
    where = "WHERE trail = ?" if scoped else "WHERE 1=1"
    sql = Statements(
        last_session=f"SELECT closed_at FROM sessions {where} ORDER BY id DESC LIMIT 1",
        close_session="UPDATE sessions SET closed_at = ? WHERE id = ?",
        insert_events=(f"INSERT INTO events({col}session, seq, name, type, job, extra, job_data, "
                       f"at) VALUES ({val}?,?,?,?,?,?,?,?)"),
        insert_firing=(f"INSERT INTO firings({col}session, event_seq, ordinal, event, event_name, "
                       "event_type, event_job, event_extra, job, callback, directory, trigger, "
                       f"language, code, status, queued_at) VALUES ({val}?,?,?,?,?,?,?,?,?,?,"
                       "?,?,?,?,'pending',?) RETURNING id"),
        start=("UPDATE firings SET attempts = attempts + 1, started_at = ? WHERE id = ? "
               "RETURNING attempts"),
        mark=("UPDATE firings SET attempts = CASE WHEN attempts < ? THEN ? ELSE attempts END, "
              "started_at = ? WHERE id = ?"),
        complete=("UPDATE firings SET status = ?, exit_code = ?, output = ?, error = ?, "
                  "started_at = COALESCE(started_at, ?), finished_at = ?, duration = ?, "
                  "attempts = CASE WHEN attempts < 1 THEN 1 ELSE attempts END WHERE id = ?"),
        count_orphans=(f"SELECT COUNT(*), MAX(id) FROM firings WHERE {only}status = 'pending' "
                       "AND session != ?"),
        adopt_orphans=(f"UPDATE firings SET session = ? WHERE {only}status = 'pending' "
                       "AND session != ?"),
        claimed=(f"SELECT {COLUMNS} FROM firings WHERE {only}session = ? AND id > ? "
                 "AND id <= ? ORDER BY id"),
        sessions=f"SELECT id, pid, started_at, closed_at, note FROM sessions {where} ORDER BY id",
        where=where,
    )
    return Statements._make([*(s.replace("?", param) for s in sql[:-1]), param])


def record(row: Sequence[Any]) -> FiringRecord:
    """A firing as read back from a row of `COLUMNS`."""
    (fid, session, seq, ordinal, ename, etype, ejob, eextra, job, callback, directory, trigger,
     language, code, status, exit_code, output, error, queued, started, finished, duration,
     attempts) = row
    return FiringRecord(
        id=fid, session=session, event_seq=seq, ordinal=ordinal,
        event=Event(name=ename, type=etype, job=ejob, extra=eextra), job=job,
        callback=callback, directory=directory, trigger=trigger, language=language, code=code,
        status=status, exit_code=exit_code, output=output, error=error, queued_at=queued,
        started_at=started, finished_at=finished, duration=duration, attempts=attempts)
