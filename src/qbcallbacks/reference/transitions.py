"""The one transition table both reference supervisors follow: what every action does in
every state, so the in-memory and the SQLite supervisor give the same answer to every call.

An action applies only in its source states; anywhere else it is refused (the call returns
False and nothing changes), as a real supervisor refuses to unblock a job that is not blocked.
Nothing happens to a job's work items or subjobs unless its row says so (`items`), and a
final item (complete, failed, killed) is never moved by a cascade.

What the three ways of taking a running job off its hosts mean here:

* `preempt` (passive): the job goes back to `pending`; its running items are left to finish.
* `interrupt` (aggressive): the job goes back to `pending` and its running items with it.
* `migrate`: as `interrupt`, with the running subjobs' hosts forgotten so they are picked
  again elsewhere (the reference supervisors choose no host; the difference is the cleared
  `host`).

At subjob level `unblock` unblocks every blocked subjob of the job, `unblock-single` only the
one named.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from ..model.statuses import ACTIVE_JOB_STATES

Kind = Literal["job", "work", "subjob"]

#: States in which a job, work item or subjob is still alive.
ACTIVE: frozenset[str] = ACTIVE_JOB_STATES


class Move(NamedTuple):
    """One row: the states an action applies in, the state it leads to, and what follows."""

    sources: frozenset[str]
    target: str
    #: For a job action: its items (work and subjobs) in these states move to `target` too.
    items: frozenset[str] = frozenset()
    #: For a subjob action: the job's other subjobs in these states move too.
    siblings: frozenset[str] = frozenset()
    #: Forget the host of the subjobs moved (migrate).
    clear_host: bool = False


_RUNNING = frozenset({"running"})
_BLOCKED = frozenset({"blocked"})

JOB_MOVES: dict[str, Move] = {
    "unblock": Move(_BLOCKED, "pending", items=_BLOCKED),
    "block": Move(frozenset({"pending", "running", "waiting", "suspended"}), "blocked"),
    "fail": Move(ACTIVE, "failed", items=ACTIVE),
    "kill": Move(ACTIVE, "killed", items=ACTIVE),
    "migrate": Move(_RUNNING, "pending", items=_RUNNING, clear_host=True),
    "preempt": Move(_RUNNING, "pending"),
    "interrupt": Move(_RUNNING, "pending", items=_RUNNING),
    "suspend": Move(frozenset({"pending", "running", "waiting"}), "suspended"),
    "resume": Move(frozenset({"suspended"}), "pending"),
}

WORK_MOVES: dict[str, Move] = {
    "unblock": Move(_BLOCKED, "pending"),
    "block": Move(frozenset({"pending", "waiting"}), "blocked"),
    "kill": Move(ACTIVE, "killed"),
    "retry": Move(frozenset({"failed", "killed", "complete"}), "pending"),
    "requeue": Move(frozenset({"running", "waiting"}), "pending"),
    "complete": Move(ACTIVE, "complete"),
    "fail": Move(ACTIVE, "failed"),
}

SUBJOB_MOVES: dict[str, Move] = {
    "unblock": Move(_BLOCKED, "pending", siblings=_BLOCKED),
    "unblock-single": Move(_BLOCKED, "pending"),
    "block": Move(frozenset({"pending", "running", "waiting", "suspended"}), "blocked"),
    "fail": Move(ACTIVE, "failed"),
    "kill": Move(ACTIVE, "killed"),
    "migrate": Move(_RUNNING, "pending", clear_host=True),
    "preempt": Move(_RUNNING, "pending"),
    "interrupt": Move(_RUNNING, "pending"),
    "suspend": Move(frozenset({"pending", "running", "waiting"}), "suspended"),
    "resume": Move(frozenset({"suspended"}), "pending"),
}

TABLES: dict[Kind, dict[str, Move]] = {"job": JOB_MOVES, "work": WORK_MOVES,
                                       "subjob": SUBJOB_MOVES}

def move(kind: Kind, action: str, status: str) -> Move | None:
    """The row for `action` on a `kind` in `status`, or None when the action is refused."""
    row = TABLES[kind].get(action)
    if row is None or status not in row.sources:
        return None
    return row
