"""The supervisor proxy in-process: answers, errors, a supervisor that goes away, none at all,
and the deploy files naming only options `serve` has."""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner

from qbcallbacks.cli.serve import command as serve_command
from qbcallbacks.model.supervisor import RUN_DEADLINE, HostError, MailMessage
from qbcallbacks.service.proxy import SendTimeout, SupervisorGone, SupervisorProxy
from support.paths import ROOT


class Peer:
    """Records what the proxy sends; a test answers through the proxy."""

    def __init__(self, fail: bool | str = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail
        self.arrived = threading.Event()

    def send(self, message: dict[str, Any], deadline: float | None = None) -> None:
        self.deadline = deadline
        if self.fail == "stalled":
            raise SendTimeout("not reading")
        if self.fail:
            raise BrokenPipeError("gone")
        self.sent.append(message)
        self.arrived.set()


def _in_thread(fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn(*args))
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def waiting_for_a_supervisor(thread: threading.Thread) -> None:
    """Return once `thread` is parked in the proxy's call, waiting on its condition."""
    deadline = time.monotonic() + 30
    while True:
        frame = sys._current_frames().get(thread.ident or -1)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        if names[:1] == ["wait"] and "call" in names:
            return
        assert time.monotonic() < deadline, "the call never waited for a supervisor"
        time.sleep(0.01)


def test_calls_become_requests_and_answers_come_back() -> None:
    outcomes: list[tuple[str, str]] = []
    proxy = SupervisorProxy(30, observe=lambda m, o: outcomes.append((m, o)))
    peer = Peer()
    proxy.attach(peer)
    t, out = _in_thread(proxy.job_action, "block", 12)
    assert peer.arrived.wait(10)
    request = peer.sent[0]
    assert request["method"] == "job_action"
    assert request["params"] == {"action": "block", "job": 12}
    assert isinstance(request["id"], str) and request["id"].startswith("s")
    assert proxy.answer({"jsonrpc": "2.0", "id": request["id"], "result": True})
    t.join(10)
    assert out == [True] and outcomes == [("job_action", "answered")]
    assert not proxy.answer({"jsonrpc": "2.0", "id": request["id"], "result": True})


def test_an_error_answer_and_a_malformed_answer_are_errors_in_the_callback() -> None:
    proxy = SupervisorProxy(30)
    peer = Peer()
    proxy.attach(peer)
    t, out = _in_thread(proxy.mail, MailMessage(to=("ann",), subject="s", body="b"))
    assert peer.arrived.wait(10)
    assert peer.sent[0]["params"] == {"to": ["ann"], "subject": "s", "body": "b",
                                      "sender": "qbcallbacks"}
    proxy.answer({"jsonrpc": "2.0", "id": peer.sent[0]["id"],
                  "error": {"code": 1, "message": "no mail here"}})
    t.join(10)
    assert isinstance(out[0], HostError) and "no mail here" in str(out[0])
    peer.arrived.clear()
    t, out = _in_thread(proxy.jobinfo, "-id", 3)
    assert peer.arrived.wait(10)
    proxy.answer({"jsonrpc": "2.0", "id": peer.sent[1]["id"], "result": {"id": 3}})
    t.join(10)
    assert isinstance(out[0], HostError) and "not a list" in str(out[0])


def test_malformed_jobinfo_arguments_are_refused_without_asking() -> None:
    proxy = SupervisorProxy(30)
    peer = Peer()
    proxy.attach(peer)
    with pytest.raises(HostError, match="unknown option"):
        proxy.jobinfo("-nope", 1)
    assert peer.sent == []


def test_a_call_sent_on_a_connection_that_closes_fails_and_is_not_resent() -> None:
    outcomes: list[tuple[str, str]] = []
    proxy = SupervisorProxy(30, observe=lambda m, o: outcomes.append((m, o)))
    old, new = Peer(), Peer()
    proxy.attach(old)
    t, out = _in_thread(proxy.work_action, "retry", 1, "7")
    assert old.arrived.wait(10)
    proxy.attach(new)  # the newest connection takes the next calls
    proxy.detach(old)
    t.join(10)
    assert isinstance(out[0], SupervisorGone) and new.sent == []
    assert outcomes == [("work_action", "gone")]
    t, out = _in_thread(proxy.subjob_action, "kill", 1, 2)
    assert new.arrived.wait(10)
    proxy.answer({"jsonrpc": "2.0", "id": new.sent[0]["id"], "result": False})
    t.join(10)
    assert out == [False]


def test_with_no_supervisor_a_call_waits_for_one_then_times_out() -> None:
    proxy = SupervisorProxy(0.2)
    with pytest.raises(HostError, match="no supervisor is connected"):
        proxy.jobinfo("-id", 1)
    proxy = SupervisorProxy(30)
    t, out = _in_thread(proxy.job_action, "kill", 5)
    waiting_for_a_supervisor(t)  # a supervisor that connects now answers the waiting call
    peer = Peer()
    proxy.attach(peer)
    assert peer.arrived.wait(10)
    proxy.answer({"jsonrpc": "2.0", "id": peer.sent[0]["id"], "result": True})
    t.join(10)
    assert out == [True]
    proxy = SupervisorProxy(0.2)
    proxy.attach(Peer())  # connected but silent
    with pytest.raises(HostError, match=r"did not answer job_action within 0\.2 s"):
        proxy.job_action("kill", 5)
    proxy.attach(Peer(fail=True))  # a send that fails is a supervisor gone
    with pytest.raises(SupervisorGone):
        proxy.job_action("kill", 5)


def test_a_supervisor_that_stops_reading_fails_the_call_as_a_timeout_by_the_run_deadline(
        ) -> None:
    outcomes: list[tuple[str, str]] = []
    proxy = SupervisorProxy(30.0, observe=lambda m, o: outcomes.append((m, o)))
    stalled = Peer(fail="stalled")
    proxy.attach(stalled)
    ends = time.monotonic() + 0.5
    asking = RUN_DEADLINE.set(ends)  # as the runtime sets it while a run asks
    try:
        with pytest.raises(HostError, match="did not answer job_action"):
            proxy.job_action("kill", 5)
    finally:
        RUN_DEADLINE.reset(asking)
    assert stalled.deadline == ends  # written within the run's deadline, not the proxy's
    assert outcomes == [("job_action", "timeout")]


def test_the_deploy_files_use_only_options_serve_has() -> None:
    help_text = CliRunner().invoke(serve_command, ["--help"]).output
    for name in ("qbcallbacks.service", "Containerfile"):
        text = "\n".join(line for line in (ROOT / "deploy" / name).read_text().splitlines()
                         if not line.startswith("#"))
        used = set(re.findall(r"(--[a-z][a-z-]+)", text)) - {"--no-install-recommends",
                                                             "--no-cache-dir", "--system",
                                                             "--home-dir", "--create-home"}
        assert used and all(option in help_text for option in used), (name, used)
