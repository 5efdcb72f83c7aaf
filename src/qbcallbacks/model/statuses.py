"""The one table of statuses: how a run ended, where a firing stands, which job states end.

A *run* is one execution of a callback and ends `ok`, `error`, `timeout` or `crashed`. A
*firing* is what the audit trail records: `pending` until its run ends, then the run's
status, or `cancelled` (the engine closed first), `lost` (it could not be run), `refused`
(a policy forbade running it). Job, work item and subjob states that end their life are
`FINAL_JOB_STATES`; every state one of them can be in is `JOB_STATES`.
"""

from __future__ import annotations

from typing import Literal, get_args

RunStatus = Literal["ok", "error", "timeout", "crashed"]
FiringStatus = Literal["pending", "ok", "error", "timeout", "crashed", "cancelled", "lost",
                       "refused"]
#: How a firing ended: its run's status, or why it did not run.
OutcomeStatus = Literal["ok", "error", "timeout", "crashed", "cancelled", "lost", "refused"]

#: Every firing status, in the order reports show them.
FIRING_STATUSES: tuple[str, ...] = get_args(FiringStatus)
#: Firing statuses that will not change any more.
FINAL_FIRING_STATUSES: tuple[str, ...] = tuple(s for s in FIRING_STATUSES if s != "pending")
#: Firing statuses that count as a callback failing (for exit codes and summaries).
FAILED_FIRING_STATUSES: tuple[str, ...] = ("error", "timeout", "crashed", "lost")

#: States of a job, work item or subjob after which nothing more happens to it.
FINAL_JOB_STATES: frozenset[str] = frozenset({"complete", "failed", "killed", "removed"})
#: States in which a job, work item or subjob is alive and waits, runs or is held.
ACTIVE_JOB_STATES: frozenset[str] = frozenset({
    "pending", "blocked", "waiting", "running", "suspended"})
#: Short-lived states a supervisor may report on the way to another one.
TRANSIENT_JOB_STATES: frozenset[str] = frozenset({"assigned", "failing", "retrying", "dying"})
#: Every state a job, work item or subjob can be in (a job's `status` is one of these).
JOB_STATES: frozenset[str] = ACTIVE_JOB_STATES | FINAL_JOB_STATES | TRANSIENT_JOB_STATES
#: States whose entry a supervisor reports as an event of the same name (`pending` and
#: `suspended` are not event names).
EVENT_STATES: frozenset[str] = frozenset({
    "running", "complete", "failed", "killed", "blocked", "waiting", "assigned", "removed"})
