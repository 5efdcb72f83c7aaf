"""Jobs and the events the supervisor reports about them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from ._base import Frozen
from .languages import JobCallbackLanguage
from .triggers import NAME_RE, EventType, normalise_name


class JobCallback(Frozen):
    """A callback submitted with one job (as opposed to a universal callback)."""

    triggers: str
    language: JobCallbackLanguage
    code: str = ""
    #: Fire at most this many times; None is unlimited.
    maximum: int | None = Field(default=None, ge=1)


class Job(Frozen):
    """What the engine needs to know of a job to decide which callbacks an event fires."""

    id: int = Field(ge=0)
    #: Process group; a job submitted alone is its own group.
    pgrp: int = Field(default=-1)
    label: str = ""
    name: str = ""
    #: Parent job id, 0 for none.
    pid: int = Field(default=0, ge=0)
    status: str = "pending"
    callbacks: tuple[JobCallback, ...] = ()

    @model_validator(mode="after")
    def _default_pgrp(self) -> Job:
        if self.pgrp < 0:
            object.__setattr__(self, "pgrp", self.id)
        return self

    def updated(self, changes: Mapping[str, Any]) -> Job:
        """This job with some fields replaced and validated again (a job update from the host)."""
        data = self.model_dump()
        data.update(changes)
        return Job.model_validate(data)


class Event(Frozen):
    """A state change of a job, work item or subjob (or a time / user event).

    `job` is the id of the job the event is about; `extra` is the work name, subjob id, host
    name or time, as in a trigger's extra.
    """

    name: str
    type: EventType
    job: int = Field(ge=0)
    extra: str | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # Built-in names are keywords, as in triggers, so `Complete` is `complete`.
        if not NAME_RE.match(value):
            raise ValueError(f"event name {value!r} is not an identifier")
        return normalise_name(value)

    @field_validator("type", mode="before")
    @classmethod
    def _lower_type(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    def format(self) -> str:
        head = f"{self.name}-{self.type}-{self.job}"
        return head if self.extra is None else f"{head}-{self.extra}"
