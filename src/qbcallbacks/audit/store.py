"""What an audit trail and an event journal are, whatever holds them.

Two backends stand side by side behind these protocols: SQLite (`audit.sqlite`, a file next to
the run) and PostgreSQL (`audit.pgstore`, for sites that keep their state there). Their shared
logic lives in `audit.sql`, their shared SQL in `audit.statements`; each backend's module
holds only what differs. Open them through `audit.backends`.

Durability, on either backend: a batch of pending firings is committed before any of them runs,
so a host that dies leaves them pending and the next start finds them (`adopt_orphans`).
Completions are buffered and committed by `flush` (the dispatcher flushes after every batch and
when idle); a completion lost in a crash leaves its firing pending, which recovery re-runs or
reports: a firing may run twice after a crash, it is never lost silently. One process writes a
trail at a time; readers are unlimited.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import QbCallbacksError
from ..model.events import Event
from . import producers
from .globals import GlobalTable
from .journal import JournalEntry, JournalKey, Position
from .records import (
    EXCERPT_HEAD,
    EXCERPT_TAIL,
    EventRecord,
    FiringRecord,
    PendingFiring,
    excerpt,
)

__all__ = ["EXCERPT_HEAD", "EXCERPT_TAIL", "AuditError", "AuditInUse", "AuditStore",
           "EventJournal", "EventRecord", "EventRow", "FiringRecord", "PendingFiring",
           "SessionRow", "excerpt"]

#: A batch's events: number in the session, the event, the job as JSON text (or a dict).
EventRow = tuple[int, Event, str | dict[str, Any] | None]
#: A session as `sessions` lists it: id, pid, started, closed (None: never closed), note.
SessionRow = tuple[int, int, float, float | None, str]


class AuditError(QbCallbacksError):
    """The audit database cannot be opened or written."""


class AuditInUse(AuditError):
    """Another live process writes this audit trail; one writer at a time."""


@runtime_checkable
class AuditStore(Protocol):
    """An open audit trail: what the dispatcher writes and the commands read."""

    #: Where it lives, for messages and for a journal kept next to it.
    path: Path
    readonly: bool
    #: This writer's session (0 before `begin_session`).
    session: int
    #: True when the session before this writer's never closed: its host died.
    previous_session_died: bool
    #: True when this writer's session is the first of the trail.
    first_session: bool

    def begin_session(self, note: str = "") -> int: ...
    def end_session(self) -> None: ...
    def record_batch(self, events: Iterable[EventRow], firings: Sequence[PendingFiring],
                     position: Position | None = None, journal_seq: int = 0) -> list[int]: ...
    def start(self, firing_id: int, started_at: float) -> int: ...
    def complete(self, firing_id: int, status: str, *, exit_code: int | None = None,
                 output: str = "", error: str | None = None, started_at: float | None = None,
                 finished_at: float | None = None, duration: float | None = None) -> None: ...
    def flush(self) -> None: ...
    def journal_position(self) -> tuple[Position, int]: ...
    def claim_orphans(self) -> list[FiringRecord]: ...
    def adopt_orphans(self) -> tuple[int, int]: ...
    def claimed(self, after: int, upto: int,
                limit: int | None = None) -> list[FiringRecord]: ...
    def release_writer(self) -> None: ...
    def close(self) -> None: ...
    def query(self, *, job: int | None = None, callback: str | None = None,
              status: str | Sequence[str] | None = None, since: float | None = None,
              until: float | None = None, session: int | None = None,
              limit: int | None = None, newest_first: bool = False,
              after_id: int | None = None,
              ids: Sequence[int] | None = None) -> list[FiringRecord]: ...
    def events(self, session: int | None = None) -> list[EventRecord]: ...
    def counts(self, session: int | None = None) -> dict[tuple[str, str], int]: ...
    def sessions(self) -> list[SessionRow]: ...
    def global_callbacks(self) -> GlobalTable: ...
    def load_producers(self) -> producers.Checkpoint: ...
    def save_producers(self, rows: Sequence[producers.ProducerRow], position: Position,
                       keep: int) -> None: ...


@runtime_checkable
class EventJournal(Protocol):
    """Where `emit` puts an event before it returns, so that an accepted event survives."""

    #: Why the journal cannot take events now (None: it can), and since when.
    problem: str | None
    problem_since: float | None
    #: Where `trim` stops whatever it is told: what a user still has to read back.
    keep_from: Position | None
    #: The position after the last event appended with a key.
    key_end: Position

    @property
    def last_key(self) -> int: ...
    def append(self, event: Event, job_json: str | None,
               key: JournalKey = None) -> tuple[int, Position]: ...
    def read_from(self, start: Position) -> Iterator[JournalEntry]: ...
    def trim(self, consumed: Position) -> None: ...
    def discard(self) -> None: ...
    def ensure_after(self, seq: int) -> None: ...
    def close(self) -> None: ...
