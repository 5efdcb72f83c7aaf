"""A firing: one callback instance fired by one event, and its cheap builder for the matcher's
inner loop."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..model._base import Frozen
from ..model.events import Event, JobCallback
from ..model.rules import Rule


class Firing(Frozen):
    """One callback instance fired by one event.

    Exactly one of `rule` (a universal callback) and `job_callback` (with its `index` in the
    job's list, or for a global callback, job 0, its id) is set; `job` is the job the
    instance is attached to, which is not always the job the event is about (`parent`, label
    and id contexts).
    """

    job: int
    event: Event
    #: Canonical text of the trigger that fired.
    trigger: str
    rule: Rule | None = None
    job_callback: JobCallback | None = None
    index: int | None = None

    @property
    def callback(self) -> str:
        """The universal callback's file name, `job:<id>#<index>` for a job-specific one, or
        `global:<id>` for a global callback (a job callback of job 0, which is no job)."""
        if self.rule is not None:
            return self.rule.file
        if self.job == 0:
            return f"global:{self.index}"
        return f"job:{self.job}#{self.index}"

    @property
    def directory(self) -> str | None:
        """The rule's callback directory; None for a job-specific callback."""
        return None if self.rule is None else self.rule.directory


#: Every field of a firing is always given, so all firings share one fields-set (as `trusted`
#: does per class: frozen models never add to it, and pydantic copies it before changing it).
_FIRING_FIELDS: set[str] = set(Firing.model_fields)
_new = object.__new__
_SLOTS: Any = BaseModel.__dict__
# The slot descriptors of every model, called directly: cheaper than `object.__setattr__`,
# which looks each one up again by name.
_set_dict = _SLOTS["__dict__"].__set__
_set_fields = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def _firing(job: int, event: Event, trigger: str, rule: Rule | None,
            job_callback: JobCallback | None, index: int | None) -> Firing:
    """The firing `trusted(Firing, ...)` would build, for about half its cost.

    A firing is made for every callback instance an event fires, so this is the matcher's
    inner loop: positional arguments instead of a keyword dict, no per-class fields-set lookup.
    The values come from the matcher's own state and are valid by construction; a test checks
    the result equals the validated model.
    """
    firing = _new(Firing)
    _set_dict(firing, {"job": job, "event": event, "trigger": trigger, "rule": rule,
                       "job_callback": job_callback, "index": index})
    _set_fields(firing, _FIRING_FIELDS)
    _set_extra(firing, None)
    _set_private(firing, None)
    return firing
