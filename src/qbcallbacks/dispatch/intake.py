"""What travels from `emit` to the matcher thread, and the matcher as the dispatcher sees it."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ..audit.journal import Position
from ..audit.records import PendingFiring
from ..matching.matcher import Firing, Matcher
from ..model._base import trusted
from ..model.events import Event, Job
from ..model.rules import Rule
from ..runtimes.api import inline_code


class MatchSource(Protocol):
    """What the dispatcher needs from the matcher; only ever called from the matcher thread."""

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        """The firings of one event, in firing order; `job` updates what is known of it."""
        ...

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace the universal rules; the state of rules kept unchanged survives."""
        ...


class MatcherSource:
    """The compiled `Matcher` as a `MatchSource`."""

    def __init__(self, matcher: Matcher | None = None) -> None:
        self.matcher = matcher if matcher is not None else Matcher()

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        return self.matcher.observe(event, job)

    def set_rules(self, rules: Sequence[Rule]) -> None:
        self.matcher.replace_rules(rules)


@dataclass(slots=True)
class Accepted:
    """An event taken by `emit` (or read back from the journal) on its way to the matcher."""

    #: Its number in the journal (events are numbered per session when matched).
    jseq: int
    event: Event
    job: Job | None
    job_json: str | None
    end: Position


@dataclass(slots=True)
class Swap:
    """New rules for the matcher thread to put in force between two events."""

    rules: tuple[Rule, ...]
    done: Future[None]


Item = Accepted | Swap | None  # None stops the matcher thread


def pending_firing(seq: int, ordinal: int, firing: Firing) -> PendingFiring:
    """The record of a firing at match time (built from valid data: no validation)."""
    rule, cb = firing.rule, firing.job_callback
    if rule is not None:
        directory, language, code = rule.directory, rule.language, None
    else:
        assert cb is not None  # a firing is of a rule or of a job callback
        directory, language, code = "", cb.language, inline_code(cb.language, cb.code)
    return trusted(PendingFiring, event_seq=seq, ordinal=ordinal, event=firing.event,
                   job=firing.job, callback=firing.callback, directory=directory,
                   trigger=firing.trigger, language=language, code=code, id=0)
