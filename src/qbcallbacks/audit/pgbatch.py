"""A PostgreSQL trail's batch as one statement: the run marks and outcomes waiting, the
batch's events, its firings (their ids drawn in row order) and the journal position, each a
part of one `WITH` statement, so that a batch costs one round trip and one commit.

A statement is atomic on its own, so the batch still commits whole or not at all. Its parts
see the same snapshot and must not change one row twice: a firing that has both a mark and an
outcome waiting gets them from one row of the outcomes (`fold`). Every column goes as an
array, in binary (text arrays would be escaped value by value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .marks import Mark

_STATEMENT = """
WITH marked AS (
    UPDATE firings AS f SET attempts = GREATEST(f.attempts, u.attempt), started_at = u.started_at
    FROM unnest(%b::bigint[], %b::int[], %b::float8[]) AS u(id, attempt, started_at)
    WHERE f.id = u.id),
done AS (
    UPDATE firings AS f SET status = u.status, exit_code = u.exit_code, output = u.output,
        error = u.error, started_at = COALESCE(u.marked_at, f.started_at, u.started_at),
        finished_at = u.finished_at, duration = u.duration,
        attempts = GREATEST(f.attempts, u.attempt, 1)
    FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::float8[], %b::float8[],
                %b::float8[], %b::bigint[], %b::int[], %b::float8[])
        AS u(status, exit_code, output, error, started_at, finished_at, duration, id, attempt,
             marked_at)
    WHERE f.id = u.id),
added_events AS (
    INSERT INTO events(trail, session, seq, name, type, job, extra, job_data, at)
    SELECT %b, %b, * FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bigint[],
                                 %b::text[], %b::text[], %b::float8[])),
placed AS (
    INSERT INTO journal_position(trail, segment, pos, seq) SELECT %b, %b, %b, %b WHERE %b
    ON CONFLICT (trail) DO UPDATE SET segment = EXCLUDED.segment, pos = EXCLUDED.pos,
        seq = GREATEST(journal_position.seq, EXCLUDED.seq)),
rows AS (
    SELECT nextval('firings_id_seq') AS id, * FROM unnest(%b::bigint[], %b::int[], %b::text[],
        %b::text[], %b::text[], %b::bigint[], %b::text[], %b::bigint[], %b::text[], %b::text[],
        %b::text[], %b::text[], %b::text[]) WITH ORDINALITY AS u(event_seq, ordinal, event,
        event_name, event_type, event_job, event_extra, job, callback, directory, trigger,
        language, code, n)),
added AS (
    INSERT INTO firings(id, trail, session, queued_at, status, event_seq, ordinal, event,
                        event_name, event_type, event_job, event_extra, job, callback, directory,
                        trigger, language, code)
    SELECT id, %b, %b, %b, 'pending', event_seq, ordinal, event, event_name, event_type,
           event_job, event_extra, job, callback, directory, trigger, language, code
    FROM rows)
SELECT id FROM rows ORDER BY n"""


def fold(marks: Sequence[Mark], outcomes: Sequence[tuple[Any, ...]]
         ) -> tuple[list[Mark], list[tuple[Any, ...]]]:
    """The marks of firings with no outcome waiting, and each outcome with its firing's
    latest mark (attempt 0 and no start time when it has none); as the marks, then the
    outcomes, written one after the other would leave the rows."""
    latest = {fid: (attempt, started) for fid, attempt, started in sorted(marks)}
    folded = []
    for row in outcomes:
        attempt, marked_at = latest.pop(row[-1], (0, None))
        folded.append((*row, attempt, marked_at))
    return [(fid, a, s) for fid, (a, s) in latest.items()], folded


def columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as `width` column lists (empty lists for no rows)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(c) for c in zip(*rows, strict=True)]


def batch(scope: tuple[str, int], marks: Sequence[Mark], outcomes: Sequence[tuple[Any, ...]],
          events: Sequence[tuple[Any, ...]], firings: Sequence[tuple[Any, ...]],
          position: tuple[int, int, int] | None, now: float) -> tuple[str, list[Any]]:
    """The statement and its parameters: `scope` is (trail, session), `events` and `firings`
    rows without them (as `SqlTrail` makes them, less their first two columns), `outcomes`
    rows of `SQL.complete`, `position` (segment, offset, journal number) or None."""
    alone, folded = fold(marks, outcomes)
    trail, session = scope
    segment, offset, seq = position if position is not None else (0, 0, 0)
    params = [*columns(alone, 3), *columns(folded, 10),
              trail, session, *columns(events, 7),
              trail, segment, offset, seq, position is not None,
              *columns(firings, 13), trail, session, now]
    return _STATEMENT, params
