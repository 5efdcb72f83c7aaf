"""Jobs and the events the supervisor reports about them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ._base import Frozen
from .languages import JobCallbackLanguage
from .statuses import JOB_STATES
from .triggers import CONTEXT_RE, NAME_RE, EventType, normalise_name


def label_problem(label: str) -> str | None:
    """Why a trigger could never address a job with this label, or None (an empty label is
    no label). A label is a trigger's context: no dash, blank or operator character, not all
    digits (that is a job id), not `self` or `parent`."""
    if not label:
        return None
    if not CONTEXT_RE.match(label):
        return (f"label {label!r} cannot be named by a trigger: a label has no '-', blank, "
                "control character or any of ()&|#*=")
    if label.isdigit() and label.isascii():
        return f"label {label!r} is all digits: a trigger would read it as a job id"
    if label.lower() in ("self", "parent"):
        return f"label {label!r} is a keyword: a trigger would read it as {label.lower()}"
    return None


#: The largest job id: ids are stored as 64-bit integers (SQLite, PostgreSQL `bigint`).
MAX_ID = 2**63 - 1


def check_text(value: str, what: str) -> str:
    """`value`, if it can be written as UTF-8: a lone surrogate (which a JSON `\\ud800`
    escape or a Python string can carry) could be neither journaled nor recorded."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{what} holds a lone surrogate (U+{ord(value[exc.start]):04X}), "
                             "which is not text") from None
    return value


class JobCallback(Frozen):
    """A callback submitted with one job (as opposed to a universal callback)."""

    triggers: str
    language: JobCallbackLanguage
    code: str = ""
    #: Fire at most this many times; None is unlimited.
    maximum: int | None = Field(default=None, ge=1, le=MAX_ID)

    @field_validator("triggers", "code")
    @classmethod
    def _check_text(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, str(info.field_name))


class Job(Frozen):
    """What the engine needs to know of a job to decide which callbacks an event fires.

    Every field is checked here, once, whatever route a job comes by (a replay line, an
    embedding supervisor, a test): an id is 1 or more (0 means "no job" and is never
    attached), a process group and a parent are job ids (a parent is not the job itself), the
    status is one of `JOB_STATES`, and a label is one a trigger can address.
    """

    id: int
    #: Process group; a job submitted alone is its own group.
    pgrp: int = Field(default=-1)
    label: str = ""
    name: str = ""
    #: Parent job id, 0 for none.
    pid: int = 0
    status: str = "pending"
    #: The job's owner and where its mail goes (the `qb` and qcb mail commands use them).
    user: str = ""
    email: str = ""
    callbacks: tuple[JobCallback, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _check_given(cls, data: Any) -> Any:
        # The default process group is the job's own; any given one must be a job id.
        if isinstance(data, Mapping):
            pgrp = data.get("pgrp", -1)
            if isinstance(pgrp, int) and pgrp != -1 and not 1 <= pgrp <= MAX_ID:
                raise ValueError(f"pgrp {pgrp} is not a job id (a process group is named by "
                                 f"its first job's id, 1 to {MAX_ID})")
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"job id {value} is not a job: ids are 1 or more (0 means no job "
                             "and is never attached)")
        if value > MAX_ID:
            raise ValueError(f"job id {value} is over {MAX_ID}, the largest job id")
        return value

    @field_validator("pid")
    @classmethod
    def _check_pid(cls, value: int) -> int:
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"pid {value} is not a job id (0 means no parent; at most "
                             f"{MAX_ID})")
        return value

    @field_validator("status")
    @classmethod
    def _check_status(cls, value: str) -> str:
        if value not in JOB_STATES:
            raise ValueError(f"unknown status {value!r}; a job is one of "
                             f"{', '.join(sorted(JOB_STATES))}")
        return value

    @field_validator("name", "user", "email")
    @classmethod
    def _check_text(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, f"the job's {info.field_name}")

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str) -> str:
        check_text(value, "the job's label")
        problem = label_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _default_pgrp(self) -> Job:
        if self.pgrp < 0:
            object.__setattr__(self, "pgrp", self.id)
        if self.pid == self.id:
            raise ValueError(f"job {self.id} cannot be its own parent (pid)")
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
    job: int = Field(ge=0, le=MAX_ID)
    extra: str | None = None

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: str | None) -> str | None:
        return value if value is None else check_text(value, "the event's extra")

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
        return value.lower() if isinstance(value, str) and value.isascii() else value

    def format(self) -> str:
        head = f"{self.name}-{self.type}-{self.job}"
        return head if self.extra is None else f"{head}-{self.extra}"
