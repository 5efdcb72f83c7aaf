"""Flamenco's update payloads (`EventJobUpdate`, `EventTaskUpdate` of its OpenAPI document) and
the one table that maps their statuses to the engine's states and events.

Only the fields the mapping needs are read; fields a later Flamenco adds are ignored, so a
Manager upgrade does not stop the adapter. A payload that is not one of these shapes is
refused with a reason (`PayloadError`) and never reaches the engine.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ...errors import QbCallbacksError

#: Largest payload read (Flamenco's updates are a few hundred bytes).
MAX_PAYLOAD = 64 * 1024


class PayloadError(QbCallbacksError):
    """An MQTT message that is not a Flamenco job or task update."""


class _Update(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobUpdate(_Update):
    """`EventJobUpdate`: a job was created, changed status, or was deleted."""

    id: str
    name: str = ""
    updated: str = ""
    status: str
    #: Absent for a job just created.
    previous_status: str | None = None
    type: str = ""
    priority: int = 50
    #: Set when the job was deleted (Flamenco sends a last update then).
    was_deleted: str | None = None


class TaskUpdate(_Update):
    """`EventTaskUpdate`: a task of a job changed status (or activity)."""

    id: str
    job_id: str
    name: str = ""
    updated: str = ""
    status: str
    previous_status: str | None = None
    activity: str = ""


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

# What a trigger's item cannot hold: blanks, controls and operator characters.
_NOT_ITEM = re.compile(r"[\s\x00-\x1f\x7f()&|*]+")


def work_name(task_name: str, task_id: str) -> str:
    """The work item name a trigger can address: the task's name with blanks and operator
    characters replaced by `_` (the task id when the name is empty)."""
    name = _NOT_ITEM.sub("_", task_name.strip())
    return name or task_id


def read_update(topic_kind: str, payload: bytes) -> JobUpdate | TaskUpdate:
    """The update a message carries; `topic_kind` is `job` (the jobs topic) or `task` (a
    job's own topic)."""
    if len(payload) > MAX_PAYLOAD:
        raise PayloadError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    try:
        data: Any = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"payload is not JSON text: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise PayloadError("payload is not a JSON object")
    model: type[JobUpdate] | type[TaskUpdate] = JobUpdate if topic_kind == "job" else TaskUpdate
    try:
        update = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "payload"
        shape = "EventJobUpdate" if topic_kind == "job" else "EventTaskUpdate"
        raise PayloadError(f"not an {shape}: {where}: {first['msg']}") from None
    table = JOB_STATUS if isinstance(update, JobUpdate) else TASK_STATUS
    if update.status not in table:
        raise PayloadError(f"unknown {topic_kind} status {update.status!r}; known: "
                           f"{', '.join(sorted(table))}")
    return update
