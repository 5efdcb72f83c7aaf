"""The service through its socket, driven by supervisors that are not ours: a Node.js client
(standard library only) and a shell client over socat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support.service import callback_dir, ran_lines, served

HERE = Path(__file__).parent
IN_CI = bool(os.environ.get("CI") or os.environ.get("HYPOTHESIS_PROFILE") == "ci")


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if IN_CI:
            pytest.fail(f"{tool} is needed in CI (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed")
    return found


def test_a_node_supervisor_sends_events_and_answers_jobinfo(tmp_path: Path) -> None:
    node = _need("node")
    with served(tmp_path, callback_dir(tmp_path)) as s:
        out = subprocess.run([node, str(HERE / "client.js"), str(s.sock), "1", "20", "--resend"],
                             capture_output=True, text=True, timeout=120, check=True)
        seen = json.loads(out.stdout)
        assert s.proc.wait(60) == 0
    assert sorted(seen["acks"]) == list(range(1, 21))
    assert sorted(seen["duplicates"]) == list(range(1, 21))  # re-sent: acked, not repeated
    assert seen["errors"] == [] and seen["drained"] is True
    assert seen["asked"] == 20
    # Each event fired once, and each callback saw the name the Node supervisor answered.
    assert sorted(ran_lines(s.workdir)) == sorted(f"node{i} None" for i in range(1, 21))


def test_a_shell_supervisor_over_socat(tmp_path: Path) -> None:
    _need("socat")
    with served(tmp_path, callback_dir(tmp_path)) as s:
        out = subprocess.run(["bash", str(HERE / "client.sh"), str(s.sock), "5"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "acks=5 asked=5 drained=yes"
        assert s.proc.wait(60) == 0
    assert sorted(ran_lines(s.workdir)) == sorted(f"sh{i} None" for i in range(1, 6))
