"""The dispatcher's `Supervisor` when the supervisor is another process: each call becomes a
request on the supervisor's connection, answered there.

Calls go to the most recently attached connection; while none is attached a call waits for
one. Every call waits at most `timeout` seconds in all (the run timeout: a run cannot outlive
it anyway), then fails inside the callback as a `HostError`, as a malformed call does. A call
already sent on a connection that closes fails at once and is not sent again: actions are not
idempotent.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from ..model.supervisor import (
    RUN_DEADLINE,
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
    parse_jobinfo_args,
)

#: Called with (method, outcome) once per call: answered, error, timeout or gone.
CallObserver = Callable[[str, str], None]


class SupervisorGone(HostError):
    """The connection a call was sent on closed before the answer came."""


class SendTimeout(OSError):
    """The peer did not read what was sent to it within the deadline (it is closed)."""


class Peer(Protocol):
    """A connection the proxy can send a request on, within a deadline."""

    def send(self, message: dict[str, Any], deadline: float | None = None) -> None:
        ...


class SupervisorProxy:
    """Implements `Supervisor` by asking the connected supervisor."""

    def __init__(self, timeout: float, observe: CallObserver | None = None) -> None:
        self.timeout = timeout
        self._observe = observe or (lambda method, outcome: None)
        self._cond = threading.Condition()
        self._peers: list[Peer] = []
        self._pending: dict[str, tuple[Future[Any], Peer, str]] = {}
        self._ids = itertools.count(1)

    # -- connections -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._peers)

    def attach(self, peer: Peer) -> None:
        """`peer` answers the calls from now on (the newest connection wins)."""
        with self._cond:
            self._peers.append(peer)
            self._cond.notify_all()

    def detach(self, peer: Peer, why: type[Exception] | None = None) -> None:
        """`peer` closed: calls sent on it fail now (as timed out when `why` is
        `SendTimeout`: it stopped reading); later calls go to the previous one."""
        with self._cond:
            if peer in self._peers:
                self._peers.remove(peer)
            gone = [k for k, (_, p, _) in self._pending.items() if p is peer]
            futures = [self._pending.pop(k) for k in gone]
        for future, _, method in futures:
            future.set_exception(SupervisorGone(
                f"the supervisor went away before answering {method}") if why is None else
                FutureTimeout())

    def answer(self, message: dict[str, Any]) -> bool:
        """A response from the supervisor; False if it answers nothing we asked."""
        key = message.get("id")
        with self._cond:
            found = self._pending.pop(key, None) if isinstance(key, str) else None
        if found is None:
            return False
        future, _, _ = found
        error = message.get("error")
        if error is not None:
            text = error.get("message") if isinstance(error, dict) else None
            future.set_exception(HostError(str(text or error)))
        else:
            future.set_result(message.get("result"))
        return True

    # -- the calls -------------------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """Send one request and wait for its answer (within the timeout)."""
        deadline = time.monotonic() + self.timeout
        run_ends = RUN_DEADLINE.get()
        if run_ends is not None:  # never past the asking run's own deadline
            deadline = min(deadline, run_ends)
        future: Future[Any] = Future()
        with self._cond:
            while not self._peers:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._observe(method, "timeout")
                    raise HostError(f"no supervisor is connected to answer {method} "
                                    f"within {self.timeout:g} s")
                self._cond.wait(left)
            peer = self._peers[-1]
            key = f"s{next(self._ids)}"
            self._pending[key] = (future, peer, method)
        try:
            peer.send({"jsonrpc": "2.0", "id": key, "method": method, "params": params},
                      deadline)
        except SendTimeout:
            self.detach(peer, SendTimeout)
        except OSError:
            self.detach(peer)
        try:
            result = future.result(max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            with self._cond:
                self._pending.pop(key, None)
            self._observe(method, "timeout")
            raise HostError(f"the supervisor did not answer {method} within "
                            f"{self.timeout:g} s") from None
        except HostError as exc:
            self._observe(method, "gone" if isinstance(exc, SupervisorGone) else "error")
            raise
        self._observe(method, "answered")
        return result

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        parse_jobinfo_args(args)  # every supervisor refuses the same spellings
        found = self.call("jobinfo", {"args": list(args)})
        if not isinstance(found, list) or not all(isinstance(j, dict) for j in found):
            raise HostError("the supervisor's jobinfo answer is not a list of jobs")
        return found

    def _action(self, method: str, params: dict[str, Any]) -> bool:
        done = self.call(method, params)
        if not isinstance(done, bool):
            raise HostError(f"the supervisor's {method} answer is not true or false")
        return done

    def job_action(self, action: JobAction, job_id: int) -> bool:
        return self._action("job_action", {"action": action, "job": job_id})

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        return self._action("work_action", {"action": action, "job": job_id, "work": work})

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        return self._action("subjob_action", {"action": action, "job": job_id,
                                              "subjob": subjob})

    def mail(self, message: MailMessage) -> None:
        self.call("mail", message.model_dump(mode="json"))
