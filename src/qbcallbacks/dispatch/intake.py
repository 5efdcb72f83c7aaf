"""What travels from `emit` to the matcher thread, and the matcher as the dispatcher sees it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from ..audit.journal import JournalEntry, Position
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


def replay(entries: Iterator[JournalEntry], room: threading.Semaphore,
           hold: Callable[[int], None], put: Callable[[Accepted], None]) -> None:
    """Put journalled events back on the way to the matcher, in order, each once `room` has
    a place for it: a backlog of any size is read as the matcher takes it, never all at once.
    A failure is reported; what was not put back is matched at the next start."""
    try:
        for entry in entries:
            job = None if entry.job_json is None else Job.model_validate_json(entry.job_json)
            room.acquire()
            hold(1)
            put(Accepted(entry.seq, entry.event, job, entry.job_json, entry.end))
    except Exception:
        logging.getLogger("qbcallbacks.dispatch").exception("reading the journal back failed")
