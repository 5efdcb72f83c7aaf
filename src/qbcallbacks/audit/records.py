"""The one record family of a firing: created when an event matches, completed with its outcome.

`PendingFiring` is a firing as the matcher thread records it; once written it carries its
trail id, and that same record goes to the executor. A runtime sees only what to run (an
`Invocation`) and answers a `RunResult`, which is also how a firing that did not run ends
(`cancelled`, `lost`, `refused`); the recorder writes it onto the firing's row.
`FiringRecord` is that row read back: the firing and what became of it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..model._base import Frozen
from ..model.events import Event
from ..model.statuses import FiringStatus

#: How much of a run's output the trail keeps: the head and the tail, joined by a marker.
EXCERPT_HEAD = 2000
EXCERPT_TAIL = 1000


@lru_cache(maxsize=4096)
def _script(directory: str, callback: str) -> Path:
    """A rule's script path, made once per rule rather than at every run (paths are
    immutable, so one is shared)."""
    return Path(directory) / callback


class PendingFiring(Frozen):
    """A firing about to run: which callback, for which job, because of which event."""

    event_seq: int
    ordinal: int
    event: Event
    job: int
    callback: str
    directory: str
    trigger: str
    language: str
    #: Inline code of a job-specific callback; None for a universal callback's file.
    code: str | None = None
    #: The trail's id, 0 until the firing is recorded.
    id: int = 0

    @property
    def path(self) -> Path | None:
        """The script of a universal callback; None for inline code."""
        return None if self.code is not None else _script(self.directory, self.callback)


class FiringRecord(PendingFiring):
    """One row of the trail: the firing as recorded, and what became of it."""

    session: int
    status: FiringStatus
    exit_code: int | None
    output: str
    error: str | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration: float | None
    #: Runs started (counted durably before each start).
    attempts: int

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"event", "code"})
        data["event"] = self.event.format()
        data["event_name"], data["event_type"] = self.event.name, self.event.type
        data["event_job"], data["event_extra"] = self.event.job, self.event.extra
        return data


class EventRecord(Frozen):
    """One recorded event, with what was known of its job when it was emitted."""

    session: int
    seq: int
    event: Event
    job_data: dict[str, Any] | None
    at: float


def excerpt(output: str) -> str:
    """The head and tail of a long output, with how much was cut in between."""
    if len(output) <= EXCERPT_HEAD + EXCERPT_TAIL:
        return output
    cut = len(output) - EXCERPT_HEAD - EXCERPT_TAIL
    return f"{output[:EXCERPT_HEAD]}\n[... {cut} characters cut ...]\n{output[-EXCERPT_TAIL:]}"
