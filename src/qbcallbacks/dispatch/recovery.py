"""What a start finds left by a host that died: firings to finish and events not yet matched.

Firings recorded but not finished are re-run, unless the recovery policy says `report`, their
callback is no longer configured, or they were already running when the host died more than
`max_reruns` times: those are marked `lost` with the reason, so a callback that kills the
host cannot make every restart die again. Events the journal accepted after the last matched
position are matched again in order, as if emitted anew.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..audit.journal import Journal, JournalEntry
from ..audit.records import FiringRecord, PendingFiring
from ..audit.store import AuditStore
from ..model.rules import Rule
from .settings import DispatcherSettings


@dataclass
class Recovery:
    """The outcome of looking at what the previous host left."""

    #: Firings left unfinished by an earlier session, as found.
    orphans: list[FiringRecord] = field(default_factory=list)
    #: Those to run again, oldest first.
    rerun: list[PendingFiring] = field(default_factory=list)
    #: Journalled events never matched, in emit order (read lazily: there may be many).
    events: Iterator[JournalEntry] = field(default_factory=lambda: iter(()))
    #: Firings marked `lost`, with the reason.
    lost: list[tuple[int, str]] = field(default_factory=list)


def recover(store: AuditStore, journal: Journal, rules: Sequence[Rule],
            settings: DispatcherSettings) -> Recovery:
    """Claim the orphans of dead sessions, decide their fate (recording the lost ones), and
    read the journal's unmatched tail."""
    out = Recovery(orphans=store.claim_orphans())
    configured = {(r.directory, r.file) for r in rules}
    for rec in out.orphans:
        reason = _why_not(rec, configured, settings)
        if reason is None:
            out.rerun.append(rec)
        else:
            store.complete(rec.id, "lost", error=reason)
            out.lost.append((rec.id, reason))
    store.flush()
    position, last_seq = store.journal_position()
    journal.ensure_after(last_seq)
    out.events = (e for e in journal.read_from(position) if e.seq > last_seq)
    return out


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
