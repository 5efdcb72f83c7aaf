"""The recorder: everything the dispatcher writes to the audit trail, and its faults.

It commits matched events with their firings and the journal position in one transaction,
counts each run's attempt before the run, and records each firing's outcome
(`complete(firing_id, RunResult)`). Outcomes are buffered by the trail and committed in
batches (`flush`). A failing write is retried with backoff while `problem` names the fault
(so `emit` refuses events and `health` says why); it clears by itself. Only while closing
gives up on the trail (`Stage.ABANDONED`) does a write raise instead: what was not written
stays in the journal and the trail for the next start.

It is the executor's `Completions`: `started` and `complete` may come from any thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from ..audit.journal import Position
from ..audit.records import PendingFiring
from ..audit.store import AuditError, AuditStore, EventJournal, EventRow
from ..model._base import trusted_from
from ..model.rules import Rule
from ..runtimes.api import RunResult
from .recovery import Recovery, recover, settle
from .settings import DispatcherSettings
from .state import InFlight, LifeCycle, Stage

T = TypeVar("T")
log = logging.getLogger("qbcallbacks.dispatch")


class Recorder:
    """Writes the trail for one dispatcher session; see the module."""

    def __init__(self, audit: AuditStore, journal: EventJournal, settings: DispatcherSettings,
                 life: LifeCycle, work: InFlight) -> None:
        self.audit, self.journal, self.settings = audit, journal, settings
        self._life, self._work = life, work
        #: The trail's fault and since when, while it lasts.
        self.problem: tuple[str, float] | None = None
        self._trimmed = 0

    def recover(self) -> Recovery:
        """What a dead host left: its unfinished firings (claimed) and unmatched events."""
        return recover(self.audit, self.journal)

    def settle(self, recovery: Recovery, rules: Sequence[Rule]) -> Iterator[list[PendingFiring]]:
        """The orphans to run again, a page at a time; the lost ones are recorded as such
        (and committed) before their page is given. The caller waits for room between pages."""
        return settle(recovery.orphans, rules, self.settings, self)

    def record(self, events: list[EventRow], firings: list[PendingFiring], end: Position,
               jseq: int) -> list[PendingFiring]:
        """Commit a batch of matched events with their firings, up to journal position `end`
        (journal number `jseq`); returns the firings with their trail ids. Raises
        `AuditError` only when closing gave up on the trail."""
        ids = self.retry(lambda: self.audit.record_batch(events, firings, end, jseq))
        if end.segment > self._trimmed:
            self.journal.trim(end)
            self._trimmed = end.segment
        # Each firing as given, with its id (a copy of valid data: no validation).
        return [trusted_from(PendingFiring, {**f.__dict__, "id": fid})
                for fid, f in zip(ids, firings, strict=True)]

    def started(self, firing_id: int, at: float) -> bool:
        try:
            self.retry(lambda: self.audit.start(firing_id, at))
        except AuditError:  # closing gave up on the trail: the firing stays pending
            self._work.done(firings=True)
            return False
        return True

    def complete(self, firing_id: int, result: RunResult) -> None:
        try:
            self.outcome(firing_id, result)
        except Exception:  # the count is released whatever happens: a drain must end
            log.exception("the outcome of firing %d could not be recorded", firing_id)
        finally:
            self._work.done(firings=True)

    def outcome(self, firing_id: int, result: RunResult) -> None:
        """Buffer a firing's outcome in the trail (committed at the next flush)."""
        self.audit.complete(firing_id, result.status, exit_code=result.exit_code,
                            output=result.output, error=result.error,
                            started_at=result.started_at, finished_at=time.time(),
                            duration=None if result.started_at is None else result.duration)

    def flush(self) -> bool:
        """Commit buffered outcomes; False (and `problem` set) if the trail refused."""
        try:
            self.audit.flush()
        except AuditError as exc:
            self._fault(exc)
            return False
        self.problem = None
        return True

    def retry(self, what: Callable[[], T]) -> T:
        """Run a trail write until it succeeds (backing off, `problem` set meanwhile), or
        until closing gives up (`Stage.ABANDONED`); then raise its last error."""
        delay = 0.01
        while True:
            try:
                out = what()
            except AuditError as exc:
                if self.problem is None:
                    log.error("audit trail unwritable, retrying: %s", exc)
                self._fault(exc)
                if self._life.reached(Stage.ABANDONED):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max)
                continue
            if self.problem is not None:
                log.warning("audit trail writable again")
                self.problem = None
            return out

    def close(self, *, release: bool) -> None:
        """End the session in the trail and close the journal; with `release`, give up the
        writer's lock too (the trail stays readable). A trail fault here is only logged."""
        self.journal.close()
        try:
            self.audit.end_session()
            if release:
                self.audit.release_writer()
        except AuditError as exc:
            log.error("the session could not be closed in the audit trail: %s", exc)

    def _fault(self, exc: AuditError) -> None:
        if self.problem is None:
            self.problem = (f"the audit trail cannot be written: {exc}", time.time())
