"""A small client of the Manager's REST API (`/api/v3`) on httpx.

httpx gives one pooled client for every call (keep-alive connections shared by the message loop
and the threads that answer callbacks), separate connect and read timeouts, and typed transport
errors. Reads are idempotent, so a connection fault or a 5xx answer is retried with exponential
backoff; a write is retried only when the request cannot have reached the Manager (the
connection was never made), so a status change is never asked twice by accident.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any

import httpx

from ...model.supervisor import HostError
from .messages import (
    JobRecord,
    PayloadError,
    TaskRecord,
    read_job,
    read_jobs,
    read_task,
    read_tasks,
)

log = logging.getLogger("qbcallbacks.adapters.flamenco")

#: Answers after which a read is tried again.
_RETRY_STATUS = frozenset({500, 502, 503, 504})


class ManagerAPI:
    """The Manager at `base_url`; `HostError` when it cannot be reached (after retries)."""

    def __init__(self, base_url: str, *, connect_timeout: float = 5.0,
                 read_timeout: float = 15.0, attempts: int = 4, backoff: float = 0.2,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._closed = threading.Event()
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            headers={"Accept": "application/json"})

    def close(self) -> None:
        self._closed.set()
        self._http.close()

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        idempotent = method == "GET"
        pause = self.backoff
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                reply = self._http.request(method, path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                problem: str = str(exc) or type(exc).__name__
            except httpx.TransportError as exc:
                if not idempotent:
                    raise HostError(self._failed(method, path, exc)) from None
                problem = str(exc) or type(exc).__name__
            else:
                if not (idempotent and reply.status_code in _RETRY_STATUS) or last:
                    return reply
                problem = f"HTTP {reply.status_code}"
            if last or self._closed.wait(pause):
                raise HostError(self._failed(method, path, problem))
            log.warning("Flamenco Manager: %s %s failed (%s); trying again", method, path,
                        problem)
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _failed(self, method: str, path: str, problem: object) -> str:
        return f"Flamenco Manager at {self.base_url} did not answer {method} {path}: {problem}"

    def _read(self, path: str) -> Any:
        """The JSON body of a 200 answer; None for 404 (or 400: not an id the Manager
        knows); `HostError` for anything else."""
        reply = self._send("GET", path, None)
        if reply.status_code in (400, 404):
            return None
        if reply.status_code != 200:
            raise HostError(self._failed("GET", path, f"HTTP {reply.status_code}"))
        try:
            return reply.json()
        except ValueError as exc:
            raise HostError(self._failed("GET", path, f"not JSON: {exc}")) from None

    def _typed(self, path: str, reader: Any) -> Any:
        data = self._read(path)
        if data is None:
            return None
        try:
            return reader(data)
        except PayloadError as exc:
            raise HostError(self._failed("GET", path, exc)) from None

    def jobs(self) -> list[JobRecord]:
        got: list[JobRecord] | None = self._typed("/api/v3/jobs", read_jobs)
        if got is None:
            raise HostError(self._failed("GET", "/api/v3/jobs", "not found"))
        return got

    def job(self, uuid: str) -> JobRecord | None:
        got: JobRecord | None = self._typed(f"/api/v3/jobs/{_quote(uuid)}", read_job)
        return got

    def tasks(self, uuid: str) -> list[TaskRecord] | None:
        got: list[TaskRecord] | None = self._typed(f"/api/v3/jobs/{_quote(uuid)}/tasks",
                                                   read_tasks)
        return got

    def task(self, uuid: str) -> TaskRecord | None:
        got: TaskRecord | None = self._typed(f"/api/v3/tasks/{_quote(uuid)}", read_task)
        return got

    def set_job_status(self, uuid: str, status: str, reason: str) -> int:
        """`POST .../jobs/{id}/setstatus`; the answer's status code (204: done)."""
        return self._send("POST", f"/api/v3/jobs/{_quote(uuid)}/setstatus",
                          {"status": status, "reason": reason}).status_code

    def set_task_status(self, uuid: str, status: str, reason: str) -> int:
        return self._send("POST", f"/api/v3/tasks/{_quote(uuid)}/setstatus",
                          {"status": status, "reason": reason}).status_code

    def delete_job(self, uuid: str) -> int:
        return self._send("DELETE", f"/api/v3/jobs/{_quote(uuid)}", None).status_code


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")

