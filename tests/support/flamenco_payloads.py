"""Flamenco Manager payloads in the exact shapes its code sends, each builder named after the
Manager function that sends it. They are JSON encodings of Go structs: keys in the struct's
order, required fields always present (Go zero values when unset), pointer fields with
`omitempty` absent when unset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class Job:
    """The fields of the Manager's job record that its events and API show."""

    uuid: str
    name: str
    status: str
    updated: str
    type: str = "simple-blender-render"
    priority: int = 50
    steps_completed: int = 0
    steps_total: int = 0
    delete_requested_at: str | None = None
    tasks: list[str] = field(default_factory=list)


@dataclass
class Task:
    uuid: str
    job: str
    name: str
    status: str
    updated: str
    activity: str = ""
    steps_completed: int = 0
    steps_total: int = 1
    worker: dict[str, str] | None = None


def new_job_update(job: Job) -> dict[str, Any]:
    """`eventbus.NewJobUpdate`: the job's current state, no `previous_status`. Sent as is by
    `BroadcastNewJob` (submission), `SetJobPriority`, `SetJobTag`, the worker step update and
    `QueueJobDeletion` (then with `delete_requested_at`)."""
    data: dict[str, Any] = {}
    if job.delete_requested_at is not None:
        data["delete_requested_at"] = job.delete_requested_at
    data.update({"id": job.uuid, "name": job.name, "priority": job.priority,
                 "refresh_tasks": False, "status": job.status,
                 "steps_completed": job.steps_completed, "steps_total": job.steps_total,
                 "type": job.type, "updated": job.updated})
    return data


def job_status_set(job: Job, previous: str, mass_task_update: bool) -> dict[str, Any]:
    """`StateMachine.jobStatusSet`: a status transition, with `previous_status`, and
    `refresh_tasks` when the job's tasks were changed in bulk (no task messages follow)."""
    data = new_job_update(job)
    data["previous_status"] = previous
    data["refresh_tasks"] = mass_task_update
    return _go_order(data, _JOB_KEYS)


def job_deleter_deleted(uuid: str) -> dict[str, Any]:
    """`job_deleter.Service.deleteJob`'s last word: only `id` and `was_deleted` set; every
    other required field holds Go's zero value (`"status": ""`)."""
    return {"id": uuid, "priority": 0, "refresh_tasks": False, "status": "",
            "steps_completed": 0, "steps_total": 0, "type": "", "updated": GO_ZERO_TIME,
            "was_deleted": True}


def new_task_update(task: Task) -> dict[str, Any]:
    """`eventbus.NewTaskUpdate`: no `previous_status`. Sent as is for a worker's step
    progress (`TaskUpdate` without a status change)."""
    data: dict[str, Any] = {"activity": task.activity, "id": task.uuid, "job_id": task.job,
                            "name": task.name, "status": task.status,
                            "steps_completed": task.steps_completed,
                            "steps_total": task.steps_total, "updated": task.updated}
    if task.worker is not None:
        data["worker"] = task.worker
    return data


def task_status_change_only(task: Task, previous: str) -> dict[str, Any]:
    """`StateMachine.taskStatusChangeOnly`: every task status change, even to the same
    status, with `previous_status`."""
    data = new_task_update(task)
    data["previous_status"] = previous
    return _go_order(data, _TASK_KEYS)


_JOB_KEYS = ("delete_requested_at", "id", "name", "previous_status", "priority",
             "refresh_tasks", "status", "steps_completed", "steps_total", "type", "updated",
             "was_deleted")
_TASK_KEYS = ("activity", "id", "job_id", "name", "previous_status", "status",
              "steps_completed", "steps_total", "updated", "worker")


def _go_order(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: data[key] for key in keys if key in data}


def api_job(job: Job) -> dict[str, Any]:
    """A job as `GET /api/v3/jobs/{id}` and `GET /api/v3/jobs` show it (the fields the
    adapter reads, and a few it does not)."""
    data = {"id": job.uuid, "name": job.name, "type": job.type, "priority": job.priority,
            "status": job.status, "activity": "", "updated": job.updated,
            "created": job.updated, "steps_completed": job.steps_completed,
            "steps_total": job.steps_total, "settings": {}, "metadata": {},
            "submitter_platform": "linux"}
    if job.delete_requested_at is not None:
        data["delete_requested_at"] = job.delete_requested_at
    return data


def api_task_summary(task: Task, index: int) -> dict[str, Any]:
    """A `TaskSummary` of `GET /api/v3/jobs/{id}/tasks`."""
    return {"id": task.uuid, "index_in_job": index, "name": task.name, "priority": 50,
            "status": task.status, "steps_completed": task.steps_completed,
            "steps_total": task.steps_total, "task_type": "blender", "updated": task.updated}
