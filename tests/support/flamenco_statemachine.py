"""The Flamenco Manager's job and task state machine, as its `task_state_machine` package
defines it, for the stand-in Manager: every status change, the job statuses that follow from
task changes, the bulk task changes a job status makes (announced by one job update with
`refresh_tasks` and no task messages), and the messages each step publishes."""

from __future__ import annotations

import itertools
import threading
import uuid as uuidlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from support.flamenco_payloads import (
    Job,
    Task,
    job_deleter_deleted,
    job_status_set,
    new_job_update,
    new_task_update,
    task_status_change_only,
)

#: Percentage of failed tasks at which the Manager fails the whole job.
TASK_FAIL_JOB_PERCENTAGE = 10

Publish = Callable[[str, dict[str, Any]], None]


class StateMachine:
    """Jobs and tasks in memory; `publish(topic suffix, payload)` is the event bus."""

    def __init__(self, publish: Publish) -> None:
        self.publish = publish
        self.jobs: dict[str, Job] = {}
        self.tasks: dict[str, Task] = {}
        self.lock = threading.RLock()
        self._ticks = itertools.count(1)
        self._epoch = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def now(self) -> str:
        """A strictly later timestamp each call, in Go's RFC 3339 with nanoseconds."""
        moment = self._epoch + timedelta(milliseconds=next(self._ticks))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"

    # -- what workers and users do ----------------------------------------------------------

    def submit(self, name: str, tasks: int = 2, uuid: str | None = None) -> Job:
        with self.lock:
            job = Job(uuid or str(uuidlib.uuid4()), name, "queued", self.now(),
                      steps_total=tasks)
            for n in range(tasks):
                task = Task(str(uuidlib.uuid4()), job.uuid, f"render-{n}", "queued",
                            self.now())
                self.tasks[task.uuid] = task
                job.tasks.append(task.uuid)
            self.jobs[job.uuid] = job
            self.publish("/jobs", new_job_update(job))  # BroadcastNewJob
            return job

    def task_status_change(self, task_uuid: str, status: str) -> None:
        with self.lock:
            task = self.tasks[task_uuid]
            job = self.jobs[task.job]
            old = task.status
            task.status, task.updated = status, self.now()
            if old != status and status == "completed":
                task.steps_completed = task.steps_total
            elif old != status and status == "queued":
                task.steps_completed = 0
            self.publish(f"/jobs/{job.uuid}", task_status_change_only(task, old))
            self._job_after_task(task, job)

    def task_progress(self, task_uuid: str) -> None:
        """A worker reports a step: a task update and a job update, neither with
        `previous_status`."""
        with self.lock:
            task = self.tasks[task_uuid]
            job = self.jobs[task.job]
            task.steps_completed = min(task.steps_completed + 1, task.steps_total)
            task.updated = job.updated = self.now()
            self.publish(f"/jobs/{job.uuid}", new_task_update(task))
            job.steps_completed += 1
            self.publish("/jobs", new_job_update(job))

    def set_priority(self, job_uuid: str, priority: int) -> None:
        with self.lock:
            job = self.jobs[job_uuid]
            job.priority, job.updated = priority, self.now()
            self.publish("/jobs", new_job_update(job))  # SetJobPriority

    def job_status_change(self, job_uuid: str, status: str) -> None:
        with self.lock:
            self._job_status_change(self.jobs[job_uuid], status)

    def delete(self, job_uuid: str) -> None:
        """`QueueJobDeletion`, then the deleter's work."""
        with self.lock:
            job = self.jobs[job_uuid]
            job.delete_requested_at = job.updated = self.now()
            self.publish("/jobs", new_job_update(job))
            for task in job.tasks:
                del self.tasks[task]
            del self.jobs[job_uuid]
            self.publish("/jobs", job_deleter_deleted(job_uuid))

    def run(self, job_uuid: str) -> None:
        """Workers run every queued task of the job to completion."""
        for task in list(self.jobs[job_uuid].tasks):
            if self.tasks[task].status == "queued":
                self.task_status_change(task, "active")
                self.task_progress(task)
                self.task_status_change(task, "completed")

    # -- the state machine ------------------------------------------------------------------

    def _count(self, job: Job, *statuses: str) -> int:
        return sum(1 for t in job.tasks if self.tasks[t].status in statuses)

    def _pausing_done(self, job: Job) -> bool:
        return job.status == "pause-requested" and self._count(job, "active") == 0

    def _job_after_task(self, task: Task, job: Job) -> None:
        status, total = task.status, max(len(job.tasks), 1)
        if status == "queued":
            if job.status == "completed":
                self._job_status_change(job, "requeueing")
        elif status == "paused":
            if self._pausing_done(job):
                self._job_status_change(job, "paused")
        elif status == "canceled":
            if self._count(job, "active", "queued", "soft-failed") == 0:
                self._job_status_change(job, "canceled")
            elif self._pausing_done(job):
                self._job_status_change(job, "paused")
        elif status == "failed":
            if int(self._count(job, "failed") / total * 100) >= TASK_FAIL_JOB_PERCENTAGE:
                self._job_status_change(job, "failed")
            elif self._pausing_done(job):
                self._job_status_change(job, "paused")
            elif job.status == "queued":
                self._job_status_change(job, "active")
        elif status in ("active", "soft-failed"):
            if job.status not in ("active", "cancel-requested"):
                self._job_status_change(job, "active")
        elif status == "completed":
            if self._count(job, "completed") == total:
                self._job_status_change(job, "completed")
            elif self._pausing_done(job):
                self._job_status_change(job, "paused")
            elif job.status == "queued":
                self._job_status_change(job, "active")

    def _job_status_change(self, job: Job, status: str) -> None:
        while status and status != job.status:
            status = self._job_status_set(job, status)

    def _job_status_set(self, job: Job, status: str) -> str:
        old = job.status
        job.status, job.updated = status, self.now()
        following, mass = self._tasks_after_job(job, old)
        self.publish("/jobs", job_status_set(job, old, mass))
        return following

    def _bulk(self, job: Job, only: tuple[str, ...] | None, status: str) -> None:
        """Tasks changed in one database query: no task messages."""
        for uuid in job.tasks:
            task = self.tasks[uuid]
            if only is None or task.status in only:
                task.status, task.updated = status, self.now()
                if status == "queued":
                    task.steps_completed = 0

    def _tasks_after_job(self, job: Job, old: str) -> tuple[str, bool]:
        status = job.status
        if status in ("cancel-requested", "failed"):
            self._bulk(job, ("active", "queued", "soft-failed"), "canceled")
            return ("canceled" if status == "cancel-requested" else ""), True
        if status == "pause-requested":
            self._bulk(job, ("queued", "soft-failed"), "paused")
            return ("paused" if self._count(job, "active") == 0 else "pause-requested"), True
        if status == "requeueing":
            if old == "under-construction":
                return "", True
            if old == "completed":
                self._bulk(job, None, "queued")
            else:
                self._bulk(job, ("canceled", "failed", "paused", "soft-failed"), "queued")
            return "queued", True
        if status == "queued":
            done = self._count(job, "completed") == len(job.tasks)
            return ("completed" if done else ""), True
        return "", False
