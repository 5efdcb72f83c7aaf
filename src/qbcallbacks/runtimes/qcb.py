"""qcb callbacks: the Qube command language, interpreted in the host process.

Each command of a `.qcb` file (or of a job callback's inline `qube` code) becomes one
`Supervisor` call on the callback's own job (`invocation.job_id`), in order:

* `<action>-self` -> `job_action(action, job)`;
* `<action>-work-self` -> `work_action(action, job, work)` where `work` is the name of the work
  item whose event fired the callback (the event's extra), so `unblock-work-self` on
  `complete-work-render-5` unblocks frame 5 of the own job;
* `<action>-subjob-self` -> `subjob_action(...)` with the firing subjob's id
  (`unblock-subjob-self` unblocks every blocked subjob of the job, `unblock-subjob-self-single`,
  the action `unblock-single`, only the firing one);
* `mail-status`, `mail-license-status`, `mail-report-status`, `mail-subjob-status` build a
  :class:`MailMessage` for the job's owner from the original's variables (`JOB_ID`,
  `JOB_NAME`, `JOB_STATUS`, ...); the license report adds the running instances that hold a
  license, the full report every work item and subjob with its state. Values are made
  single-line before they reach the subject, and the message model refuses line breaks in
  headers, so a job name cannot add a header.

An action the target cannot take (a frame that is not blocked, a job without that frame) is
not an error: it is noted in the output, as the recipe's "no-op for jobs without that frame"
needs. A command that cannot apply at all (a work command fired by a job event) or that the
supervisor refuses is an error; the remaining commands still run. The run's deadline holds
whatever the supervisor does: each command's supervisor calls are made on an answer thread
(`asking`) that the run waits for no longer than its deadline, so a slow supervisor ends the
run `timeout` at the deadline and its late answer is dropped.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, NamedTuple, cast

from pydantic import ValidationError

from ..errors import Diagnostic
from ..lang import parse_qcb
from ..lang.qcb import ParsedQcb
from ..model.limits import default_limits
from ..model.supervisor import (
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    Supervisor,
    WorkAction,
    asking_until,
    single_line,
)
from .api import (
    Invocation,
    RunResult,
    Runtime,
    RuntimeSettings,
    finish,
    keep_output,
    log,
)
from .asking import Answerers
from .scripts import ProgramCache, ScriptRefused
from .validate import qcb_syntax

_MAILS: dict[str, tuple[str, str]] = {
    # command -> (subject template, first body line)
    "mail-status": ("Job {JOB_ID} ({JOB_NAME}) is {JOB_STATUS}",
                    "Status report for job {JOB_ID}."),
    "mail-license-status": ("License status: job {JOB_ID} ({JOB_NAME}) is {JOB_STATUS}",
                            "License status for job {JOB_ID}."),
    "mail-report-status": ("Report: job {JOB_ID} ({JOB_NAME}) is {JOB_STATUS}",
                           "Report for job {JOB_ID}."),
    "mail-subjob-status": ("Job {JOB_ID} ({JOB_NAME}) subjob {SUBJOB_ID} is {SUBJOB_STATUS}",
                           "Status report for subjob {SUBJOB_ID} of job {JOB_ID}."),
}


class _Checked(NamedTuple):
    parsed: ParsedQcb
    #: The commands to run, in order; None when the program has errors.
    commands: tuple[str, ...] | None


def _check(name: str, source: bytes | str) -> _Checked:
    text = source if isinstance(source, str) else source.decode("utf-8")
    parsed = parse_qcb(text, name)
    return _Checked(parsed, None if parsed.program is None else parsed.program.commands)


class QcbRuntime(Runtime):
    def __init__(self, supervisor: Supervisor | None = None,
                 settings: RuntimeSettings | None = None, **overrides: Any) -> None:
        super().__init__(supervisor, settings, **overrides)
        #: Checked programs of script files (by path) and of inline code (by the code), each
        #: used only while the text read for a run is the text it was checked from.
        self._files: ProgramCache[_Checked] = ProgramCache(_check)
        self._inline: ProgramCache[_Checked] = ProgramCache(_check)
        #: Commands' supervisor calls run here, so a slow supervisor cannot hold a run past
        #: its deadline (see `asking`).
        self._answerers = Answerers(max(8, 2 * self.settings.pool_size))

    def close(self) -> None:
        self._answerers.close()

    def validate(self, path: Path) -> list[Diagnostic]:
        return qcb_syntax(path)

    def run(self, invocation: Invocation) -> RunResult:
        supervisor = self.require_supervisor()
        start = time.monotonic()
        deadline = start + invocation.timeout
        try:
            parsed, commands = self._program(invocation)
        except ScriptRefused as exc:
            return finish(invocation, RunResult(
                status="error", exit_code=2, duration=time.monotonic() - start,
                error=f"refused the script {invocation.source_name}: {exc}"))
        except (OSError, UnicodeDecodeError) as exc:
            return finish(invocation, RunResult(
                status="error", exit_code=2, duration=time.monotonic() - start,
                error=f"cannot read the script {invocation.source_name}: {exc}"))
        if commands is None:
            if invocation.code is not None:  # name this job's callback in the diagnostics
                parsed = parse_qcb(invocation.code, invocation.callback)
            return finish(invocation, RunResult(
                status="error", exit_code=2, duration=time.monotonic() - start,
                error="\n".join(d.render() for d in parsed.diagnostics)))
        notes: list[str] = []
        errors: list[str] = []
        status = "ok"
        for command in commands:
            reply = None if time.monotonic() > deadline else self._answerers.ask(
                functools.partial(asking_until, deadline, _command, command, invocation,
                                  supervisor), deadline)
            if reply is None:  # the deadline passed; a late answer of the supervisor is dropped
                status = "timeout"
                errors.append(f"stopped at {command}: the run passed its "
                              f"{invocation.timeout:g}s timeout")
                break
            notes.append(f"{command}: {reply['note']}")
            if "error" in reply:
                errors.append(f"{command}: {reply['error']}")
        if errors and status == "ok":
            status = "error"
        data = "".join(n + "\n" for n in notes).encode("utf-8", "replace")
        output, dropped = keep_output(data, self.settings.output_cap)
        return finish(invocation, RunResult(
            status=cast(Any, status), exit_code=0 if status == "ok" else 1, output=output,
            output_dropped=dropped, error="\n".join(errors) or None,
            duration=time.monotonic() - start), self.settings)

    def _program(self, invocation: Invocation) -> _Checked:
        """The checked program to run: read from its file (or inline) for every run, and
        checked again only when its text changed (see `scripts`)."""
        if invocation.code is not None:
            # Keyed by the code: the jobs that share a callback's code share its check.
            return self._inline.get(invocation.code, invocation.code)
        if invocation.path is None:
            raise OSError("an invocation needs a path or inline code")
        path = str(invocation.path)
        return self._files.get_file(path, default_limits().max_qcb_bytes)


def _command(command: str, invocation: Invocation, supervisor: Supervisor) -> dict[str, str]:
    """One command's note for the output, and its error if it failed; never raises."""
    try:
        return {"note": _execute(command, invocation, supervisor)}
    except HostError as exc:
        return {"note": f"error: {exc}", "error": str(exc)}
    except Exception as exc:  # the supervisor's own fault must not end the host
        log.exception("supervisor failed running %s", command)
        return {"note": "error: the supervisor failed",
                "error": f"the supervisor failed: {type(exc).__name__}: {exc}"}


def _execute(command: str, invocation: Invocation, supervisor: Supervisor) -> str:
    """Run one command; returns a note for the output, raises HostError when it cannot."""
    job = invocation.job_id
    if job == 0:  # every command acts on the callback's own job, and a global one has none
        raise HostError(f"a global callback has no job, so {command!r} has no target; a qcb "
                        "command acts on the callback's own job (use Python or Perl, and "
                        "name the job)")
    if command in _MAILS:
        message = build_mail(command, invocation, supervisor)
        supervisor.mail(message)
        return f"mailed {', '.join(message.to)}"
    if command.endswith("-work-self"):
        action = command.removesuffix("-work-self")
        work = invocation.work_name
        if work is None:
            raise HostError(f"needs a work event to know which work item; fired by "
                            f"{invocation.event.format()}")
        ok = supervisor.work_action(cast(WorkAction, action), job, work)
        return (f"{action} work {work!r} of job {job}" if ok else
                f"job {job} has no work {work!r} that can take {action}; nothing done")
    if "-subjob-self" in command:
        action = "unblock-single" if command.endswith("-single") else command.split("-subjob")[0]
        subjob = invocation.subjob_id
        if subjob < 0:
            raise HostError(f"needs a subjob event to know which subjob; fired by "
                            f"{invocation.event.format()}")
        ok = supervisor.subjob_action(cast(SubjobAction, action), job, subjob)
        return (f"{action} subjob {subjob} of job {job}" if ok else
                f"job {job} has no subjob {subjob} that can take {action}; nothing done")
    action = command.removesuffix("-self")
    ok = supervisor.job_action(cast(JobAction, action), job)
    return f"{action} job {job}" if ok else f"job {job} cannot take {action} now; nothing done"


def mail_variables(invocation: Invocation, job: dict[str, Any]) -> dict[str, str]:
    """The original's mail variables for the callback's job, each made single-line."""
    subjob = invocation.subjob_id
    sub_status = next((str(s.get("status", "")) for s in job.get("subjobs", ())
                       if isinstance(s, dict) and s.get("id") == subjob), "")
    values = {
        "JOB_ID": job.get("id", invocation.job_id), "JOB_NAME": job.get("name", ""),
        "JOB_LABEL": job.get("label", ""), "JOB_STATUS": job.get("status", ""),
        "JOB_USER": job.get("user", ""), "JOB_PGRP": job.get("pgrp", ""),
        "JOB_PID": job.get("pid", ""), "JOB_PRIORITY": job.get("priority", ""),
        "EVENT": invocation.event.format(), "WORK_NAME": invocation.work_name or "",
        "SUBJOB_ID": subjob if subjob >= 0 else "", "SUBJOB_STATUS": sub_status,
    }
    return {k: single_line(str(v)) for k, v in values.items()}


def _details(command: str, job: dict[str, Any]) -> str:
    """What sets the license and full reports apart from `mail-status`.

    A license report lists the job's instances that hold a license now (running subjobs,
    with their hosts); a full report adds every work item and every subjob with its state.
    """
    subjobs = [s for s in job.get("subjobs", ()) if isinstance(s, dict)]
    if command == "mail-license-status":
        running = [s for s in subjobs if s.get("status") == "running"]
        lines = [f"LICENSES_IN_USE: {len(running)}"]
        lines += [f"LICENSE: subjob {s.get('id')} on {s.get('host') or 'unknown host'}"
                  for s in running]
        return "\n" + "".join(single_line(line) + "\n" for line in lines)
    if command == "mail-report-status":
        work = [w for w in job.get("agenda", ()) if isinstance(w, dict)]
        lines = [f"WORK {w.get('name')}: {w.get('status')}" for w in work]
        lines += [f"SUBJOB {s.get('id')}: {s.get('status')}"
                  + (f" on {s.get('host')}" if s.get("host") else "") for s in subjobs]
        return "\n" + "".join(single_line(line) + "\n" for line in lines) if lines else ""
    return ""


def build_mail(command: str, invocation: Invocation, supervisor: Supervisor) -> MailMessage:
    """The message a mail command sends, to the job's `email` (or `mailaddress`, or user)."""
    if command == "mail-subjob-status" and invocation.subjob_id < 0:
        raise HostError(f"needs a subjob event; fired by {invocation.event.format()}")
    found = supervisor.jobinfo("-id", invocation.job_id, "-subjobs", "-agenda")
    if not found:
        raise HostError(f"job {invocation.job_id} does not exist")
    job: dict[str, Any] = found[0]
    variables = mail_variables(invocation, job)
    to = next((str(job[k]) for k in ("email", "mailaddress", "user") if job.get(k)), "")
    if not to:
        raise HostError(f"job {invocation.job_id} has no owner to mail")
    subject_template, intro = _MAILS[command]
    body = intro.format(**variables) + "\n\n" + "".join(
        f"{k}: {v}\n" for k, v in variables.items() if v != "") + _details(command, job)
    try:
        return MailMessage(to=(to,), subject=subject_template.format(**variables), body=body)
    except ValidationError as exc:
        raise HostError(f"mail refused: {exc.errors()[0]['msg']}") from None
