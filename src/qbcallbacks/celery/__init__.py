"""The Celery app whose workers run callbacks for a dispatcher with `executor="celery"`.

Start workers with the ordinary command::

    QBCALLBACKS_BROKER=amqp://host// celery -A qbcallbacks.celery worker --concurrency 4

The broker is `QBCALLBACKS_BROKER`, else Celery's own configuration (`-b`, or a module named
by `CELERY_CONFIG_MODULE`). Runs use the same runtimes, clean state per run and deadlines as
on the dispatcher's host; callback directories are read at the same paths, so every worker
host must see them as the dispatcher does (a farm's shared storage). Runs are acknowledged
late and given back when their worker is lost (at least once; the dispatcher records each
firing once), and each worker process takes one run at a time (prefetch multiplier 1).
The queue is `QBCALLBACKS_QUEUE` (default `qbcallbacks`), as on the dispatcher.
Recycling: `QBCALLBACKS_MAX_TASKS_PER_CHILD` (default 1000) and
`QBCALLBACKS_MAX_MEMORY_PER_CHILD` (KiB) set Celery's per-child limits. Use the prefork pool
(the default) or `solo`: time limits and recycling need prefork.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_shutdown

from ..dispatch.remote.wire import BROKER_ENV, RUN_TASK, run_queue
from ..errors import QbCallbacksError
from . import task as _task

app = Celery("qbcallbacks")
app.config_from_envvar("CELERY_CONFIG_MODULE", silent=True)


class WorkerConfigError(QbCallbacksError):
    """A worker setting from the environment that cannot be used."""


def _int_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) == 0:
        raise WorkerConfigError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


app.conf.update(
    task_serializer="json", accept_content=["json"], result_serializer="json",
    task_ignore_result=True,
    task_acks_late=True, task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_prefetch_multiplier=1,
    task_default_queue=run_queue(),
    worker_max_tasks_per_child=_int_env("QBCALLBACKS_MAX_TASKS_PER_CHILD") or 1000,
    worker_max_memory_per_child=_int_env("QBCALLBACKS_MAX_MEMORY_PER_CHILD"),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if os.environ.get(BROKER_ENV):
    app.conf.broker_url = os.environ[BROKER_ENV]


class RunTask(Task):  # type: ignore[misc]  # Celery is untyped
    """A run whose hard time limit killed its process is reported `timeout` from the
    worker's main process (the run's own process cannot any more)."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        from billiard.exceptions import TimeLimitExceeded

        if isinstance(exc, TimeLimitExceeded) and args:
            _task.report_hard_limit(self.app.conf.broker_url, args[0], exc)


@app.task(name=RUN_TASK, base=RunTask, bind=True, acks_late=True,  # type: ignore[untyped-decorator]
          reject_on_worker_lost=True)
def run(self: RunTask, message: dict[str, Any]) -> str:
    """Run one firing (see `task.run_remote`); returns how it went, for the worker's log."""
    return _task.run_remote(self.app.conf.broker_url, message)


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_runtimes(**_: Any) -> None:
    _task.close_process()


__all__ = ["WorkerConfigError", "app", "run"]
