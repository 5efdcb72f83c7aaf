"""What a start finds left by a host that died: firings to finish and events not yet matched.

Firings recorded but not finished are re-run, unless the recovery policy says `report`, their
callback is no longer configured, or they were already running when the host died more than
`max_reruns` times: those are marked `lost` with the reason, so a callback that kills the
host cannot make every restart die again. Events the journal accepted after the last matched
position are matched again in order, as if emitted anew.

A dead host may leave any number of both, so neither is ever held in memory whole: the
orphans are claimed with one update and read back a page at a time, each page only once the
runs have room for it (`settle`), and a re-run waits as the bare firing, not the trail row;
the journal is read lazily, within the queue's bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar, overload

from ..audit.journal import JournalEntry
from ..audit.records import FiringRecord, PendingFiring
from ..audit.store import AuditStore, EventJournal
from ..model._base import trusted_from
from ..model.rules import Rule
from ..runtimes.api import RunResult
from .settings import DispatcherSettings

T = TypeVar("T")
log = logging.getLogger("qbcallbacks.dispatch")

#: Orphans read from the trail at a time when they are only looked at.
PAGE = 512
#: What a run needs of an orphan: the firing, without what the trail row adds.
_RUN_FIELDS = tuple(PendingFiring.model_fields)


class Retry(Protocol):
    """Runs a trail operation, retrying it while the trail fails (the recorder's)."""

    def __call__(self, what: Callable[[], T]) -> T: ...


def _direct(what: Callable[[], T]) -> T:
    return what()


class Orphans(Sequence[FiringRecord]):
    """The firings a start claimed from dead sessions, oldest first, read from the trail a
    page at a time whenever they are looked at (so as they stand now: re-run or `lost`)."""

    def __init__(self, store: AuditStore, count: int = 0, upto: int = 0) -> None:
        self.store, self.total, self.upto = store, count, upto

    def pages(self, size: int = PAGE, retry: Retry = _direct) -> Iterator[list[FiringRecord]]:
        """The orphans in pages of at most `size`; the next page is read when asked for."""
        after = 0
        while self.total and after < self.upto:
            page = retry(partial(self.store.claimed, after, self.upto, max(1, size)))
            if not page:
                return
            after = page[-1].id
            yield page

    def __iter__(self) -> Iterator[FiringRecord]:
        for page in self.pages():
            yield from page

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, index: int) -> FiringRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[FiringRecord]: ...

    def __getitem__(self, index: int | slice) -> FiringRecord | Sequence[FiringRecord]:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"<{self.total} orphaned firings, ids up to {self.upto}>"


@dataclass
class Recovery:
    """The outcome of looking at what the previous host left."""

    #: Firings left unfinished by an earlier session, claimed by this one.
    orphans: Orphans
    #: Journalled events never matched, in emit order (read lazily: there may be many).
    events: Iterator[JournalEntry] = field(default_factory=lambda: iter(()))


def recover(store: AuditStore, journal: EventJournal) -> Recovery:
    """Claim the orphans of dead sessions (their fate is decided by `settle`) and open the
    journal's unmatched tail."""
    count, upto = store.adopt_orphans()
    position, last_seq = store.journal_position()
    journal.ensure_after(last_seq)
    events = (e for e in journal.read_from(position) if e.seq > last_seq)
    return Recovery(Orphans(store, count, upto), events)


class Writer(Protocol):
    """What settling needs of the trail's writer (the dispatcher's recorder)."""

    def outcome(self, firing_id: int, result: RunResult) -> None: ...

    def retry(self, what: Callable[[], T]) -> T: ...


def settle(orphans: Orphans, rules: Sequence[Rule], settings: DispatcherSettings,
           writer: Writer) -> Iterator[list[PendingFiring]]:
    """Decide each orphan's fate, oldest first, a page of `settings.batch` at a time: the lost
    ones are recorded (and committed with their page), the others are yielded to be run
    again. The caller takes the next page only once the runs have room for it, so at most a
    page of orphans is in memory beyond the runs' own bound. A failure is reported; what was
    not settled is found again at the next start."""
    configured = {(r.directory, r.file) for r in rules}
    try:
        for page in orphans.pages(settings.batch, writer.retry):
            rerun: list[PendingFiring] = []
            for rec in page:
                reason = _why_not(rec, configured, settings)
                if reason is None:
                    rerun.append(_to_run(rec))
                else:
                    writer.outcome(rec.id, RunResult(status="lost", error=reason))
            writer.retry(orphans.store.flush)
            yield rerun
    except Exception:
        log.exception("settling the firings a previous host left failed")


def _to_run(rec: FiringRecord) -> PendingFiring:
    """The firing of an orphan alone (a copy of valid data: no validation): a trail row
    weighs about three times as much, and up to `max_backlog` re-runs wait in memory."""
    values = rec.__dict__
    return trusted_from(PendingFiring, {name: values[name] for name in _RUN_FIELDS})


def _why_not(rec: FiringRecord, configured: set[tuple[str, str]],
             settings: DispatcherSettings) -> str | None:
    if settings.recovery == "report":
        return "the host stopped before this run finished; not run again (recovery = report)"
    if rec.attempts > settings.max_reruns:
        return (f"the host died while this callback ran, {rec.attempts} times; not run again "
                f"(max_reruns = {settings.max_reruns})")
    if rec.code is None and (rec.directory, rec.callback) not in configured:
        return "the host stopped before this run finished and the callback is no longer configured"
    return None
