"""The line-protocol client against a small service speaking `spec/service.md`: events are
acked, re-sent numbers are duplicates, the service's calls are answered by our supervisor."""

from __future__ import annotations

import socket

import pytest

from qbcallbacks.adapters.client import (
    ServiceBusy,
    ServiceClient,
    ServiceGone,
    ServiceRefused,
    open_socket,
)
from qbcallbacks.reference.memory import MemorySupervisor
from support.line_service import FakeService


@pytest.fixture
def service(tmp_path):
    path = str(tmp_path / "s.sock")
    svc = FakeService(path)
    yield svc, f"unix:{path}"
    svc.close()


def event(seq: int, type_: str = "job") -> dict:
    return {"seq": seq, "type": type_, "event": "complete", "job": {"id": 1}, "extra": None}


def test_events_are_acked_and_resends_are_duplicates(service) -> None:
    svc, address = service
    sup = MemorySupervisor()
    sup.submit(name="shot")
    client = ServiceClient(address, sup, timeout=10)
    try:
        assert client.request("health", {})["last_seq"] == 0
        assert client.event(event(1)) == {"ack": 1}
        assert client.event(event(2)) == {"ack": 2}
        assert client.event(event(2)) == {"ack": 2, "duplicate": True}
        assert svc.journaled == [1, 2]
        with pytest.raises(ServiceRefused):
            client.event(event(3, "bad"))
        with pytest.raises(ServiceBusy):
            client.event(event(13))
        # The service's calls were answered from our supervisor, errors as errors.
        while len(svc.answers) < 2:
            assert svc.answered.wait(10)
            svc.answered.clear()
        jobs = [a for a in svc.answers if isinstance(a, list)]
        errors = [a for a in svc.answers if isinstance(a, dict)]
        assert jobs[0][0]["id"] == 1 and jobs[0][0]["name"] == "shot"
        assert errors[0]["code"] == -32000
    finally:
        client.close()


def test_a_closed_connection_is_service_gone(service) -> None:
    svc, address = service
    client = ServiceClient(address, MemorySupervisor(), timeout=10)
    client.event(event(1))
    svc.conn.shutdown(socket.SHUT_RDWR)
    with pytest.raises(ServiceGone):
        client.event(event(2))
        client.event(event(3))
    assert not client.alive
    client.close()


def test_bad_addresses_are_service_gone(tmp_path) -> None:
    with pytest.raises(ServiceGone, match="unix:SOCKET"):
        open_socket("http://x")
    with pytest.raises(ServiceGone, match="cannot connect"):
        open_socket(f"unix:{tmp_path / 'none.sock'}")


def test_the_adapter_feeds_the_service_and_resends_as_duplicates(service, tmp_path) -> None:
    from qbcallbacks.adapters.flamenco.bridge import EventRefused, ServiceSink
    from qbcallbacks.adapters.flamenco.messages import read_update
    from qbcallbacks.adapters.flamenco.reconcile import apply_job_update
    from qbcallbacks.adapters.flamenco.state import AdapterState

    svc, address = service
    svc.last_seq = 40  # what the service's trail already holds
    state = AdapterState(tmp_path / "state.db")
    sink = ServiceSink(address, MemorySupervisor(), state)
    payload = b'{"id": "j-1", "name": "shot", "status": "active", "updated": "1"}'
    sink.connect()  # learns the last seq the service holds
    raised = apply_job_update(state, read_update("job", payload), None)
    assert [seq for seq, _ in raised] == [41, 42]  # numbered above what the service holds
    for seq, line in raised:
        sink.deliver(seq, line)
    assert svc.journaled == [41, 42]  # submit, running
    for seq, line in state.owed():  # not marked handed on (a crash): sent again
        sink.deliver(seq, line)
    assert svc.journaled == [41, 42]
    # It said who it is first: the supervisor of the producer "flamenco".
    assert svc.hellos == [{"role": "supervisor", "producer": "flamenco", "epoch": 0}]
    with pytest.raises(EventRefused):
        sink.deliver(43, {"type": "bad"})
    sink.close()
    state.close()


def test_an_adapter_without_a_supervisor_says_so_with_its_token(service) -> None:
    svc, address = service
    svc.last_seq = 9
    client = ServiceClient(address, producer="render", epoch=4, token="t" * 20, timeout=10)
    try:
        assert client.last_seq == 9  # where the service says this producer resumes
        assert svc.hellos == [{"role": "adapter", "producer": "render", "epoch": 4,
                               "token": "t" * 20}]
    finally:
        client.close()


def test_a_refused_hello_is_service_gone_never_a_refused_event(tmp_path) -> None:
    import json
    import threading

    path = tmp_path / "r.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def refuse() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            hello = json.loads(reader.readline())
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": hello["id"], "error": {
                "code": -32011, "message": "already has a supervisor"}}).encode() + b"\n")

    t = threading.Thread(target=refuse, daemon=True)
    t.start()
    with pytest.raises(ServiceGone, match="already has a supervisor"):
        ServiceClient(f"unix:{path}", MemorySupervisor(), producer="flamenco", timeout=10)
    t.join(10)
    listener.close()
