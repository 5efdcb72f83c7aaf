"""Runs on other hosts: the `CeleryExecutor` sends each recorded firing to a broker, Celery
workers (`qbcallbacks.celery`) run it, and everything a run says comes back to the dispatcher
over the broker (`wire`): its start, its `qb` calls and its outcome. Nothing here imports
Celery until an executor starts; the worker side only needs `wire` and `link`."""
