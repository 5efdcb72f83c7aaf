"""Checking a dispatcher's audit trail against what the matcher predicts for the same stream.

The dispatcher records every event it matched (with the job as it was then known) next to the
firings. Replaying those events through a fresh `Matcher` with the same rules gives the firings
that *should* be in the trail; `simulate`, the benchmark and the end-to-end tests compare the
two, so "nothing lost, nothing extra" is checked rather than assumed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from ..matching.matcher import Matcher
from ..model._base import Frozen
from ..model.events import Job
from ..model.rules import Rule
from ..model.statuses import FINAL_FIRING_STATUSES
from .store import AuditStore, EventRecord

FiringKey = tuple[int, int, str, str]  # event seq, attached job, callback, trigger


def predict(rules: Iterable[Rule], events: Iterable[EventRecord]) -> list[FiringKey]:
    """The firings a fresh matcher gives for a recorded stream, in order."""
    matcher = Matcher(rules)
    out: list[FiringKey] = []
    for rec in events:
        job = None if rec.job_data is None else Job.model_validate(rec.job_data)
        for f in matcher.observe(rec.event, job):
            out.append((rec.seq, f.job, f.callback, f.trigger))
    return out


class Verification(Frozen):
    """The outcome of comparing a session's trail with the prediction."""

    events: int
    predicted: int
    recorded: int
    #: Predicted firings the trail lacks, and recorded ones nobody predicted.
    missing: tuple[FiringKey, ...] = ()
    unexpected: tuple[FiringKey, ...] = ()
    #: Firings of the session that did not reach a final status.
    unfinished: int = 0
    #: Firings cancelled or lost (recorded, but never run to an end).
    not_run: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.unfinished or self.not_run)


def verify_session(audit: AuditStore, session: int, rules: Sequence[Rule]) -> Verification:
    events = audit.events(session)
    expected = Counter(predict(rules, events))
    firings = audit.query(session=session)
    got = Counter((f.event_seq, f.job, f.callback, f.trigger) for f in firings)
    return Verification(
        events=len(events), predicted=sum(expected.values()), recorded=sum(got.values()),
        missing=tuple(sorted((expected - got).elements())),
        unexpected=tuple(sorted((got - expected).elements())),
        unfinished=sum(1 for f in firings if f.status not in FINAL_FIRING_STATUSES),
        not_run=sum(1 for f in firings if f.status in ("cancelled", "lost")))
