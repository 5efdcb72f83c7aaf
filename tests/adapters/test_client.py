"""The line-protocol client against a small service speaking `spec/service.md`: events are
acked, re-sent numbers are duplicates, the service's calls are answered by our supervisor."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from qbcallbacks.adapters.client import (
    ServiceBusy,
    ServiceClient,
    ServiceGone,
    ServiceRefused,
    open_socket,
)
from qbcallbacks.reference.memory import MemorySupervisor


class FakeService:
    """Acks events by `seq` (a number not above the last is a duplicate), refuses
    `type: "bad"` and `seq` 13 (busy), and asks `jobinfo` after the first event."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.last_seq = 0
        self.journaled: list[int] = []
        self.answers: list[object] = []
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        with conn, conn.makefile("rb") as reader:
            self.talk(conn, reader)

    def talk(self, conn: socket.socket, reader) -> None:
        asked = False
        for raw in reader:
            msg = json.loads(raw)
            if "method" not in msg:
                self.answers.append(msg.get("result", msg.get("error")))
                self.answered.set()
                continue
            params = msg["params"]
            if msg["method"] == "health":
                reply = {"result": {"ok": True, "last_seq": self.last_seq}}
            elif params.get("type") == "bad":
                reply = {"error": {"code": -32602, "message": "'type' must be one of job"}}
            elif params["seq"] == 13:
                reply = {"error": {"code": -32001, "message": "queue full"}}
            elif params["seq"] <= self.last_seq:
                reply = {"result": {"ack": params["seq"], "duplicate": True}}
            else:
                self.last_seq = params["seq"]
                self.journaled.append(params["seq"])
                reply = {"result": {"ack": params["seq"]}}
            conn.sendall((json.dumps({"jsonrpc": "2.0", "id": msg["id"], **reply}) + "\n")
                         .encode())
            if not asked:
                asked = True
                conn.sendall(b'{"jsonrpc":"2.0","id":"s1","method":"jobinfo",'
                             b'"params":{"args":["-id",1]}}\n'
                             b'{"jsonrpc":"2.0","id":"s2","method":"explode",'
                             b'"params":{"action":"warp","job":1}}\n')

    def close(self) -> None:
        self.listener.close()
        if hasattr(self, "conn"):
            self.conn.close()
        self.thread.join(10)


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
