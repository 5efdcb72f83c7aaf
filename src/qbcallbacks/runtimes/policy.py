"""What the engine agrees to run: job-specific code is off unless the site turns it on.

A universal callback is a script an administrator put in a callback directory. A
job-specific callback is code that arrived with a job, from whoever submitted it, and would
run as the supervisor's user (often root). So job-specific callbacks in Python, Perl or any
site language run only where the site enabled them (qb.conf `supervisor_job_callback_code =
true`, or `DispatcherSettings(allow_job_code=True)`); `qube` and `mail` callbacks can only ask
the supervisor for what a qcb program can say, and stay on.

This is an execution policy, nothing more: matching, `replay --dry-run` and the spec vectors
are unchanged; a refused firing is recorded in the audit trail as `refused` with the reason.
"""

from __future__ import annotations

#: Job-specific callback languages that run even when job code is off.
ALWAYS_ALLOWED: frozenset[str] = frozenset({"qube", "mail", "qcb"})

#: The qb.conf key that turns job-specific code on.
JOB_CODE_KEY = "supervisor_job_callback_code"

#: The qb.conf key that lets global callbacks be submitted (their code, in any language, is
#: then the site's own decision, as a script in a callback directory is).
GLOBALS_KEY = "supervisor_global_callbacks"


def job_code_refusal(language: str, *, job_specific: bool, allowed: bool) -> str | None:
    """Why a firing must not run, or None when it may."""
    if not job_specific or allowed or language in ALWAYS_ALLOWED:
        return None
    return (f"job-specific {language} callbacks are off on this site: code sent with a job "
            f"would run as the supervisor's user (enable with {JOB_CODE_KEY} = true in "
            "qb.conf, or DispatcherSettings(allow_job_code=True))")
