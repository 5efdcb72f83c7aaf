"""`qbcallbacks adapt flamenco`'s arguments: a prefix MQTT cannot subscribe to is a usage
error, and `--dead-letters` shows what was kept aside (text, or base64 for bytes that are not
UTF-8)."""

from __future__ import annotations

import base64
import json

from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.cli import main


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
