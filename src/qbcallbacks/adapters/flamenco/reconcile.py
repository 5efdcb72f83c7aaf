"""What the Manager says, applied to the adapter's state: one MQTT update, one job's task list
(`refresh_tasks`), or every job and task (reconciliation).

The Manager's MQTT forwarder keeps at most 10 messages while it cannot publish and drops the
rest, and it sends no per-task messages for bulk changes, so MQTT alone misses changes. The
REST API is the Manager's own record: reading it at start, after every reconnect and whenever a
message says tasks changed in bulk, and comparing it with the stored state, raises each change
that MQTT missed; the stored state makes sure none is raised twice. Within one job, task events
come before the job's own status event (tasks finish before their job does).
"""

from __future__ import annotations

import logging

from .api import ManagerAPI
from .messages import JOB_STATUS, TASK_STATUS, JobRecord, JobUpdate, TaskRecord, TaskUpdate
from .state import AdapterState, Changes, Line

log = logging.getLogger("qbcallbacks.adapters.flamenco")

#: The state flag set once the first reconciliation took the Manager's jobs as they were.
BASELINE = "baseline"


def _apply_tasks(changes: Changes, number: int, tasks: list[TaskRecord], *,
                 silent: bool = False) -> None:
    for task in tasks:
        if task.status in TASK_STATUS:  # a later Manager's status is left alone
            changes.task(number, task.id, task.name, task.status, updated=task.updated,
                         silent=silent)


def apply_job_update(state: AdapterState, update: JobUpdate,
                     tasks: list[TaskRecord] | None) -> list[tuple[int, Line]]:
    """A job update (with the job's tasks read after it, for `refresh_tasks`)."""
    def steps(changes: Changes) -> None:
        if update.was_deleted:
            changes.remove(update.id)
            return
        number = changes.job(update.id, None, name=update.name)
        if number is not None and tasks is not None:
            _apply_tasks(changes, number, tasks)
        changes.job(update.id, update.status, name=update.name, updated=update.updated)
    return state.apply(steps)


def apply_task_update(state: AdapterState, update: TaskUpdate) -> list[tuple[int, Line]]:
    """A task update; a job never seen is registered (`submit`) with its status unknown
    until the next reconciliation reads it."""
    def steps(changes: Changes) -> None:
        number = changes.job(update.job_id, None)
        if number is not None:
            changes.task(number, update.id, update.name, update.status,
                         updated=update.updated)
    return state.apply(steps)


def reconcile(api: ManagerAPI, state: AdapterState) -> list[tuple[int, Line]]:
    """Read every job and its tasks and raise what changed since the stored state; a job the
    Manager no longer lists was deleted. The very first time (an empty state) nothing is
    raised: what happened before the adapter existed is not news."""
    silent = not state.flag(BASELINE)
    jobs = api.jobs()
    tasks = {job.id: api.tasks(job.id) or [] for job in jobs}

    def steps(changes: Changes) -> None:
        listed = {job.id for job in jobs}
        for uuid in changes.live_jobs():
            if uuid not in listed:
                changes.remove(uuid)
        for job in jobs:
            _apply_job(changes, job, tasks[job.id], silent)

    raised = state.apply(steps)
    if silent:
        state.set_flag(BASELINE)
    log.info("reconciled with the Manager: %d job(s), %d change(s) raised", len(jobs),
             len(raised))
    return raised


def _apply_job(changes: Changes, job: JobRecord, tasks: list[TaskRecord],
               silent: bool) -> None:
    number = changes.job(job.id, None, name=job.name, silent=silent)
    if number is None:
        return
    _apply_tasks(changes, number, tasks, silent=silent)
    if job.status in JOB_STATUS:  # a later Manager's status is left alone
        changes.job(job.id, job.status, name=job.name, updated=job.updated, silent=silent)
