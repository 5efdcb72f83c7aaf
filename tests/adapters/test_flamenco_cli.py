"""`qbcallbacks adapt flamenco`'s arguments: a prefix MQTT cannot subscribe to and a producer
name the service would refuse are usage errors, `--dead-letters` shows what was kept aside
(text, or base64 for bytes that are not UTF-8), and the adapter says hello to the service as
its producer."""

from __future__ import annotations

import base64
import json

from qbcallbacks.adapters.flamenco.sinks import ServiceSink
from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.cli import main
from qbcallbacks.reference.memory import MemorySupervisor
from support.line_service import FakeService


class Ran:
    def __init__(self, capsys, *args: str) -> None:
        self.exit_code = main(["adapt", "flamenco", *args])
        out = capsys.readouterr()
        self.output = out.out + out.err


def test_a_prefix_with_a_wildcard_is_a_usage_error(tmp_path, capsys) -> None:
    got = Ran(capsys, "--mqtt", "mqtt://127.0.0.1:9", "--prefix", "farm/#", "--direct", ".",
                "--audit", str(tmp_path / "a.db"), "--state", str(tmp_path / "s.db"))
    assert got.exit_code == 2 and "'+', '#' or NUL" in got.output
    assert not (tmp_path / "s.db").exists()


def test_the_broker_is_needed_to_run(tmp_path, capsys) -> None:
    got = Ran(capsys, "--direct", ".", "--audit", str(tmp_path / "a.db"))
    assert got.exit_code == 2 and "--mqtt" in got.output


def test_dead_letters_are_shown(tmp_path, capsys) -> None:
    state = AdapterState(tmp_path / "s.db")
    state.dead_letter("flamenco/jobs", b'{"id": 7}', "not an EventJobUpdate: id")
    state.dead_letter("flamenco/jobs/x", b"\xff\xfe", "not JSON text")
    state.close()
    got = Ran(capsys, "--state", str(tmp_path / "s.db"), "--dead-letters")
    assert got.exit_code == 0, got.output
    first, second = (json.loads(line) for line in got.output.splitlines())
    assert (first["topic"], first["payload"], first["reason"]) == (
        "flamenco/jobs", '{"id": 7}', "not an EventJobUpdate: id")
    assert base64.b64decode(second["payload_base64"]) == b"\xff\xfe"


def test_dead_letters_of_a_missing_state_is_a_usage_error(tmp_path, capsys) -> None:
    got = Ran(capsys, "--state", str(tmp_path / "none.db"), "--dead-letters")
    assert got.exit_code == 2 and "no such adapter state" in got.output
    assert not (tmp_path / "none.db").exists()


def test_a_producer_name_the_service_would_refuse_is_a_usage_error(tmp_path, capsys) -> None:
    got = Ran(capsys, "--mqtt", "mqtt://127.0.0.1:9", "--service", "unix:/nowhere",
              "--producer", "", "--state", str(tmp_path / "s.db"))
    assert got.exit_code == 2 and "--producer" in got.output


def test_the_adapter_introduces_itself_as_its_producer(tmp_path) -> None:
    path = str(tmp_path / "s.sock")
    svc = FakeService(path)
    state = AdapterState(tmp_path / "s.db")
    svc.last_seq = 7
    sink = ServiceSink(f"unix:{path}", MemorySupervisor(), state, producer="farm-a")
    try:
        sink.connect()
        assert svc.hellos == [{"role": "supervisor", "producer": "farm-a", "epoch": 0}]
        state.apply(lambda changes: changes.job("j-1", "queued"))
        assert [seq for seq, _ in state.owed()] == [8]  # numbered above what it holds
    finally:
        sink.close()
        state.close()
        svc.close()
