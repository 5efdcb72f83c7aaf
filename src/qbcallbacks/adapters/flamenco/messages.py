"""Flamenco's payloads as the Manager really sends them, and the tables that map its statuses.

The Manager writes `EventJobUpdate` and `EventTaskUpdate` with Go's `encoding/json` from the
structs its OpenAPI document generates: a required field is always present and holds Go's zero
value when unset (`""`, `0`, `false`, the zero time `0001-01-01T00:00:00Z`); an optional field
is a pointer with `omitempty`, so it is absent when unset (`name`, `previous_status`,
`delete_requested_at`, `was_deleted` of a job; `previous_status` and `worker` of a task). Which
fields a message carries depends on the Manager code that sent it (spec/flamenco.md lists them),
so nothing here relies on `previous_status`: the adapter compares with what it knows.

The REST API's `Job` and `TaskSummary` are read here too (reconciliation and `jobinfo`).
Anything that is not one of these shapes is refused with a reason (`PayloadError`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from ...errors import QbCallbacksError

#: Largest payload read (the Manager's updates are a few hundred bytes).
MAX_PAYLOAD = 64 * 1024

#: What a Flamenco id may hold: the Manager names jobs and tasks by UUID.
_ID = r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$"

#: Go's zero `time.Time`, which the Manager sends for a timestamp it did not set.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class PayloadError(QbCallbacksError):
    """An MQTT message or an API answer that is not what the Manager sends."""


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobUpdate(_Shape):
    """`EventJobUpdate` (job topic `PREFIX/jobs`)."""

    id: str = Field(pattern=_ID)
    #: A pointer in Go: absent on the deletion message.
    name: str | None = None
    updated: str = GO_ZERO_TIME
    #: `""` on the deletion message, a `JobStatus` otherwise.
    status: str
    #: Only on a status transition (the state machine's `jobStatusSet`).
    previous_status: str | None = None
    type: str = ""
    priority: StrictInt = 0
    #: True when the state machine changed the job's tasks in bulk, with no task messages.
    refresh_tasks: StrictBool = False
    steps_completed: StrictInt = 0
    steps_total: StrictInt = 0
    #: Set once deletion was asked for; the job still exists.
    delete_requested_at: str | None = None
    #: True on the job deleter's last message, whose other fields are Go zero values.
    was_deleted: StrictBool | None = None


class TaskUpdate(_Shape):
    """`EventTaskUpdate` (a job's own topic `PREFIX/jobs/{job uuid}`)."""

    id: str = Field(pattern=_ID)
    job_id: str = Field(pattern=_ID)
    name: str = ""
    updated: str = GO_ZERO_TIME
    status: str
    previous_status: str | None = None
    activity: str = ""
    steps_completed: StrictInt = 0
    steps_total: StrictInt = 0


class JobRecord(_Shape):
    """A job as `GET /api/v3/jobs` and `GET /api/v3/jobs/{id}` answer it (the fields read)."""

    id: str = Field(pattern=_ID)
    name: str = ""
    status: str
    updated: str = GO_ZERO_TIME
    priority: StrictInt = 0
    type: str = ""


class TaskRecord(_Shape):
    """A `TaskSummary` of `GET /api/v3/jobs/{id}/tasks`, or a task of `GET /api/v3/tasks/{id}`."""

    id: str = Field(pattern=_ID)
    name: str = ""
    status: str
    updated: str = GO_ZERO_TIME


#: Flamenco job status -> (the engine's job state, the job event raised on entering it;
#: None raises none). A job seen for the first time also raises `submit` first.
JOB_STATUS: dict[str, tuple[str, str | None]] = {
    "under-construction": ("pending", None),
    "queued": ("pending", None),
    "active": ("running", "running"),
    "pause-requested": ("dying", None),
    "paused": ("blocked", "blocked"),
    "completed": ("complete", "complete"),
    "failed": ("failed", "failed"),
    "cancel-requested": ("dying", None),
    "canceled": ("killed", "killed"),
    "requeueing": ("retrying", None),
}

#: Flamenco task status -> (the engine's work state, the work event raised on entering it).
TASK_STATUS: dict[str, tuple[str, str | None]] = {
    "queued": ("pending", None),
    "active": ("running", "running"),
    "paused": ("blocked", "blocked"),
    "soft-failed": ("retrying", None),
    "failed": ("failed", "failed"),
    "canceled": ("killed", "killed"),
    "completed": ("complete", "complete"),
}

#: The status a task is created with: a task first seen in another status has changed.
TASK_BORN = "queued"

# What a trigger's item cannot hold: blanks, controls and operator characters.
_NOT_ITEM = re.compile(r"[\s\x00-\x1f\x7f()&|*]+")


def work_name(task_name: str, task_id: str) -> str:
    """The work item name a trigger can address: the task's name with blanks and operator
    characters replaced by `_` (the task id when the name is empty)."""
    name = _NOT_ITEM.sub("_", task_name.strip())
    return name or task_id


def moment(stamp: str) -> datetime:
    """A Manager timestamp (RFC 3339, Go writes nanoseconds) as an aware datetime; Go's zero
    time and anything unreadable are the earliest moment."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", stamp.strip()).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _json_object(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"{what} of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        data: Any = json.loads(payload.decode("utf-8"))
        # JSON may spell lone surrogates (`"\ud800"`) that no UTF-8 text can hold.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} is not JSON text: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return data


_M = TypeVar("_M", bound=_Shape)


def _validate(model: type[_M], data: object, shape: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "payload"
        raise PayloadError(f"not an {shape}: {where}: {first['msg']}") from None


def read_update(topic_kind: str, payload: bytes) -> JobUpdate | TaskUpdate:
    """The update a message carries; `topic_kind` is `job` (the jobs topic) or `task` (a
    job's own topic)."""
    data = _json_object(payload, "payload")
    if topic_kind == "job":
        job = _validate(JobUpdate, data, "EventJobUpdate")
        if job.was_deleted:
            return job  # the deleter sends zero values, `"status": ""` among them
        _known(job.status, JOB_STATUS, "job")
        return job
    task = _validate(TaskUpdate, data, "EventTaskUpdate")
    _known(task.status, TASK_STATUS, "task")
    return task


def read_jobs(data: object) -> list[JobRecord]:
    """`GET /api/v3/jobs` (`{"jobs": [...]}`). A status this adapter does not know (a later
    Manager's) is kept as read: the job is listed, so not deleted, and its status is left
    alone until it is one the adapter knows."""
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        raise PayloadError("the job list is not {\"jobs\": [...]}")
    return [read_job(job) for job in jobs]


def read_job(data: object) -> JobRecord:
    return _validate(JobRecord, data, "API Job")


def read_tasks(data: object) -> list[TaskRecord]:
    """`GET /api/v3/jobs/{id}/tasks` (`{"tasks": [...]}`; Go omits an absent list)."""
    tasks = data.get("tasks", []) if isinstance(data, dict) else None
    if not isinstance(tasks, list):
        raise PayloadError("the task list is not {\"tasks\": [...]}")
    return [read_task(task) for task in tasks]


def read_task(data: object) -> TaskRecord:
    return _validate(TaskRecord, data, "API TaskSummary")


def _known(status: str, table: dict[str, Any], kind: str) -> None:
    if status not in table:
        raise PayloadError(f"unknown {kind} status {status!r}; known: "
                           f"{', '.join(sorted(table))}")
