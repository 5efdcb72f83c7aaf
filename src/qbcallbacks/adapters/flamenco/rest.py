"""The `Supervisor` a Flamenco Manager stands behind: callbacks' questions and actions become
calls of its REST API (`/api/v3`, the operations of Flamenco's OpenAPI document).

Job actions go through `POST /api/v3/jobs/{job_id}/setstatus`, work actions through
`POST /api/v3/tasks/{task_id}/setstatus` (both with a `{status, reason}` body, answered 204),
`remove` through `DELETE /api/v3/jobs/{job_id}`; `jobinfo` reads `GET /api/v3/jobs/{job_id}`
(and `/tasks` for `-agenda`). The table of what each action asks for is in `spec/flamenco.md`.
An action Flamenco has no status for (subjobs, `migrate`) or that the Manager refuses
answers False, as the protocol asks; a Manager that cannot be reached is a `HostError`, which
the callback sees as an error.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ...model.supervisor import (
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
    jobinfo_record,
    parse_jobinfo_args,
)
from .messages import JOB_STATUS, TASK_STATUS, work_name
from .state import AdapterState

log = logging.getLogger("qbcallbacks.adapters.flamenco")

#: Job action -> the job status asked of Flamenco (None: Flamenco has none; `remove` deletes).
JOB_ACTIONS: dict[str, str | None] = {
    "block": "pause-requested", "suspend": "pause-requested", "preempt": "pause-requested",
    "interrupt": "pause-requested", "unblock": "queued", "resume": "queued",
    "kill": "cancel-requested", "fail": "cancel-requested", "remove": None, "migrate": None,
}
#: Work action -> the task status asked of Flamenco.
WORK_ACTIONS: dict[str, str] = {
    "block": "paused", "unblock": "queued", "kill": "canceled", "retry": "queued",
    "requeue": "queued", "complete": "completed", "fail": "failed",
}

REASON = "asked by a qbcallbacks callback"


class FlamencoSupervisor:
    """Answers the `Supervisor` protocol from a Flamenco Manager at `base_url`."""

    def __init__(self, base_url: str, state: AdapterState, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.state = state
        self.timeout = timeout
        #: Mails callbacks asked for: Flamenco sends none, so they are logged and kept here.
        self.mails: list[MailMessage] = []

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                raw = reply.read()
                return reply.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise HostError(f"Flamenco Manager at {self.base_url} did not answer {method} "
                            f"{path}: {getattr(exc, 'reason', exc)}") from None

    def _uuid(self, job_id: int) -> str | None:
        return self.state.job_uuid(job_id)

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        query = parse_jobinfo_args(args)
        found = []
        # Flamenco has no process groups: every job is its own group.
        for number in dict.fromkeys(query.ids + query.pgrps):
            uuid = self._uuid(number)
            if uuid is None:
                continue
            status, job = self._call("GET", f"/api/v3/jobs/{_quote(uuid)}")
            if status != 200 or not isinstance(job, dict):
                continue
            agenda = self._agenda(uuid) if query.agenda else None
            found.append(jobinfo_record(
                id=number, name=str(job.get("name", "")), label="",
                status=JOB_STATUS.get(str(job.get("status")), ("pending", None))[0],
                pgrp=number, pid=0, user="", priority=int(job.get("priority", 0) or 0),
                agenda=agenda, subjobs=[] if query.subjobs else None))
        return found

    def _agenda(self, uuid: str) -> list[tuple[str, str]]:
        status, body = self._call("GET", f"/api/v3/jobs/{_quote(uuid)}/tasks")
        tasks = body.get("tasks", []) if status == 200 and isinstance(body, dict) else []
        return [(work_name(str(t.get("name", "")), str(t.get("id", ""))),
                 TASK_STATUS.get(str(t.get("status")), ("pending", None))[0])
                for t in tasks if isinstance(t, dict)]

    def job_action(self, action: JobAction, job_id: int) -> bool:
        uuid = self._uuid(job_id)
        if uuid is None or action not in JOB_ACTIONS:
            return False
        if action == "remove":
            status, _ = self._call("DELETE", f"/api/v3/jobs/{_quote(uuid)}")
            return status in (200, 202, 204)
        wanted = JOB_ACTIONS[action]
        if wanted is None:
            return False
        status, _ = self._call("POST", f"/api/v3/jobs/{_quote(uuid)}/setstatus",
                               {"status": wanted, "reason": REASON})
        return status == 204

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        task = self.state.task_uuid(job_id, work)
        if task is None or action not in WORK_ACTIONS:
            return False
        status, _ = self._call("POST", f"/api/v3/tasks/{_quote(task)}/setstatus",
                               {"status": WORK_ACTIONS[action], "reason": REASON})
        return status == 204

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        return False  # Flamenco runs tasks on workers; it has no job instances to act on

    def mail(self, message: MailMessage) -> None:
        log.warning("Flamenco sends no mail; a callback's mail to %s (%r) was not sent",
                    ", ".join(message.to), message.subject)
        self.mails.append(message)


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")
