"""The messages of the service protocol (`spec/service.md`), as models.

They are the source of the JSON Schemas in `spec/service/` (`python -m
qbcallbacks.service.messages spec/service` writes them; a test keeps them equal). The service
itself reads events with the stream's reader (`qbcallbacks.stream.EventReader`), whose
messages say what is wrong in the words `replay` uses; these models describe the same shape.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model._base import Frozen
from ..model.events import MAX_ID
from ..model.supervisor import JobAction, SubjobAction, WorkAction
from ..stream import MAX_EVENT_LINE

#: The largest `seq` (a signed 64-bit integer, so every language can hold it, as job ids).
MAX_SEQ = MAX_ID
#: The longest line either side may send (as in an events file).
MAX_LINE = MAX_EVENT_LINE

# JSON-RPC error codes (the standard ones, then the service's own).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
BACK_PRESSURE = -32001
UNAVAILABLE = -32002
DRAINING = -32003
#: A retriable refusal of an earlier seq of this producer is still owed: re-send from it.
OUT_OF_ORDER = -32004
#: The seq names another event (other content, a gap, too old) or the epoch was replaced.
CONFLICT = -32005
#: The connection has not said who it is: the first request is `hello`.
HELLO_FIRST = -32010
#: Not allowed: a bad token, a method the role may not call, a second supervisor.
FORBIDDEN = -32011
#: The service has `--max-connections` open already.
TOO_MANY = -32012

#: The roles a connection may take with `hello`.
Role = Literal["supervisor", "admin", "adapter"]
#: A `global` request refused: not allowed on this site, not a valid callback, no such id.
REFUSED = -32006

Id = int | str | None


class Request(Frozen):
    """A JSON-RPC request, either way; without `id` a notification (never answered)."""

    jsonrpc: Literal["2.0"]
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    id: Id = None


class ErrorObject(Frozen):
    """What went wrong; `code` is one of the table in `spec/service.md`; `data` holds
    `{"resend_from": N}` with -32004."""

    code: int
    message: str
    data: Any = None


class Response(Frozen):
    """A JSON-RPC response: `result` on success, else `error`."""

    jsonrpc: Literal["2.0"]
    id: Id
    result: Any = None
    error: ErrorObject | None = None


# -- supervisor -> service ----------------------------------------------------------------


class JobObject(BaseModel):
    """A job as an event line gives it: `id` and any job fields (see `spec/semantics.md`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int = Field(ge=1)


class EventParams(Frozen):
    """One event: a line of the event stream plus the supervisor's `seq`."""

    seq: int = Field(ge=1, le=MAX_SEQ)
    type: str
    event: str | None = None
    job: JobObject | int | None = None
    extra: str | int | None = None


class EventResult(Frozen):
    """The event is journaled (`duplicate`: it was already, and is not journaled again)."""

    ack: int
    duplicate: bool | None = None


class HelloParams(Frozen):
    """The first request of every connection: who it is."""

    role: Role
    #: The event source's name (roles that send events: `supervisor`, `adapter`).
    producer: str | None = Field(default=None, min_length=1, max_length=200)
    #: The producer's epoch: a producer that starts its `seq` over takes a higher one.
    epoch: int | None = Field(default=None, ge=0, le=MAX_SEQ)
    #: The shared secret (`--token-file`), where the listener asks for one.
    token: str | None = None


class HelloResult(Frozen):
    """Where the producer resumes: `last_seq` is the highest seq journaled for it in this
    epoch (0: none)."""

    role: Role
    producer: str | None = None
    epoch: int | None = None
    last_seq: int


class ReloadParams(Frozen):
    directories: list[str] | None = None


class DiagnosticOut(Frozen):
    """A finding as `check --format json` prints it."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: str
    code: str
    message: str


class ReloadResult(Frozen):
    diagnostics: list[DiagnosticOut]


class AttachParams(Frozen):
    pass


class AttachResult(Frozen):
    """This connection answers the service's requests from now on."""

    attached: bool


class HealthParams(Frozen):
    pass


class HealthResult(Frozen):
    """Whether events are taken; `problem` names the cause when not."""

    ok: bool
    problem: str | None = None
    since: float | None = None
    supervisor: bool
    draining: bool
    queued: int
    last_seq: int
    #: Every producer the service knows: its newest epoch and that epoch's last seq.
    producers: dict[str, dict[str, int]] = Field(default_factory=dict)


class MetricsResult(Frozen):
    """The metrics in Prometheus' text format, as `GET /metrics` serves them."""

    text: str


class DrainParams(Frozen):
    timeout: float | None = Field(default=None, ge=0)


class DrainResult(Frozen):
    drained: bool


class GlobalParams(Frozen):
    """`add` a global callback (`trigger`, `language`, `code`), `list` them, or `remove` one
    (`id`)."""

    op: Literal["add", "list", "remove"]
    trigger: str | None = None
    language: Literal["qube", "python", "perl", "mail"] | None = None
    code: str | None = None
    id: int | None = Field(default=None, ge=1)


class GlobalOut(Frozen):
    id: int
    trigger: str
    language: str
    code: str
    submitted_at: float
    last_instant: float | None = None


class GlobalResult(Frozen):
    """`add`: the new `id`; `list`: `globals`; `remove`: the `removed` id."""

    id: int | None = None
    globals: list[GlobalOut] | None = None
    removed: int | None = None


# -- service -> supervisor ----------------------------------------------------------------


class JobinfoParams(Frozen):
    args: list[str | int]


class JobInfo(BaseModel):
    """A job in a `jobinfo` answer; more fields (`user`, `agenda`, ...) may follow."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int
    name: str
    label: str
    status: str
    pgrp: int
    pid: int


class JobActionParams(Frozen):
    action: JobAction
    job: int


class WorkActionParams(Frozen):
    action: WorkAction
    job: int
    work: str


class SubjobActionParams(Frozen):
    action: SubjobAction
    job: int
    subjob: int


class MailParams(Frozen):
    to: list[str] = Field(min_length=1)
    subject: str
    body: str
    sender: str = "qbcallbacks"


# -- HTTP ---------------------------------------------------------------------------------


class BatchError(Frozen):
    code: int
    message: str
    seq: int | None = None
    data: Any = None


class BatchResult(Frozen):
    """The answer to `POST /events`: the events taken, in order, and why the next was not."""

    acks: list[EventResult]
    error: BatchError | None = None


#: Every message, by the name of its schema file (without `.json`).
SCHEMAS: dict[str, type[BaseModel]] = {
    "request": Request, "response": Response, "error": ErrorObject,
    "hello.params": HelloParams, "hello.result": HelloResult,
    "event.params": EventParams, "event.result": EventResult,
    "attach.params": AttachParams, "attach.result": AttachResult,
    "reload.params": ReloadParams, "reload.result": ReloadResult,
    "health.params": HealthParams, "health.result": HealthResult,
    "drain.params": DrainParams, "drain.result": DrainResult,
    "global.params": GlobalParams, "global.result": GlobalResult,
    "metrics.params": HealthParams, "metrics.result": MetricsResult,
    "jobinfo.params": JobinfoParams, "jobinfo.result.item": JobInfo,
    "job_action.params": JobActionParams, "work_action.params": WorkActionParams,
    "subjob_action.params": SubjobActionParams, "mail.params": MailParams,
    "http.events.result": BatchResult,
}


def schema_text(model: type[BaseModel]) -> str:
    """The schema file's text for `model` (stable: sorted keys, final newline)."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, model in SCHEMAS.items():
        path = directory / f"{name}.json"
        path.write_text(schema_text(model), encoding="utf-8")
        out.append(path)
    return out


if __name__ == "__main__":  # pragma: no cover
    for written in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "spec/service")):
        print(written)
