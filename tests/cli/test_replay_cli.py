"""`qbcallbacks replay --dry-run` the way an administrator runs it: its output and status
(read in the test process), and events piped to a real process's standard input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.cli import run_cli
from support.paths import ROOT
from support.vectors import event_cases

EXAMPLES = ROOT / "examples" / "callback"
SCRIPT_TEXT = {".py": "pass\n", ".pl": "1;\n", ".qcb": "mail-status\n"}


CASES = event_cases()


def replay(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
           ) -> subprocess.CompletedProcess[str]:
    """The command run in this process (`support.cli`), `env` added to the environment."""
    return run_cli("replay", *args, cwd=cwd, env={**os.environ, **(env or {})})


def write_events(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_examples_directory(tmp_path: Path) -> None:
    events = write_events(tmp_path / "ev.jsonl", [
        {"event": "submit", "type": "job", "job": {"id": 10, "label": "render"}},
        {"event": "submit", "type": "job", "job": {"id": 11, "label": "comp", "pgrp": 10}},
        {"event": "complete", "type": "work", "job": 10, "extra": "5"},
        {"event": "failed", "type": "job", "job": 11},
    ])
    done = replay("examples/callback", "--events", str(events), "--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    d = "examples/callback"
    assert json_lines(done.stdout) == [
        {"seq": 0, "job": 10, "callback": "submitted.py", "directory": d,
         "trigger": "submit-job-self"},
        {"seq": 1, "job": 11, "callback": "submitted.py", "directory": d,
         "trigger": "submit-job-self"},
        {"seq": 2, "job": 10, "callback": "checkWork.pl", "directory": d,
         "trigger": "done-work-self-*"},
        {"seq": 2, "job": 10, "callback": "unblock-frame.qcb", "directory": d,
         "trigger": "complete-work-render-*"},
        {"seq": 2, "job": 11, "callback": "unblock-frame.qcb", "directory": d,
         "trigger": "complete-work-render-*"},
        {"seq": 3, "job": 11, "callback": "logFailuresToDB.py", "directory": d,
         "trigger": "failed-job-self"},
        {"seq": 3, "job": 11, "callback": "mail-status.qcb", "directory": d,
         "trigger": "done-job-self"},
    ]


def materialise(case: dict[str, Any], root: Path) -> str:
    """Write the case's directories under `root`; returns the PATH argument (a comma list)."""
    for entry in case["directories"]:
        directory = root / entry["directory"]
        directory.mkdir(parents=True)
        text = entry["callbacks.conf"]
        (directory / "callbacks.conf").write_text(text, encoding="utf-8")
        for line in text.splitlines():
            name = line.split("=")[0].strip()
            (directory / name).write_text(SCRIPT_TEXT[Path(name).suffix], encoding="utf-8")
            (directory / name).chmod(0o644)
        (directory / "callbacks.conf").chmod(0o644)
    return ",".join(e["directory"] for e in case["directories"])


@pytest.mark.parametrize("case", CASES)
def test_vectors_through_the_cli(case: dict[str, Any], tmp_path: Path) -> None:
    path_arg = materialise(case, tmp_path)
    events = write_events(tmp_path / "events.jsonl", case["events"])
    done = replay(path_arg, "--events", str(events), "--dry-run", "--format", "json",
                  cwd=tmp_path)
    assert json_lines(done.stdout) == case["firings"]
    assert done.returncode == (1 if case["bad_lines"] else 0)
    reported = [line for line in done.stderr.splitlines() if "bad event line" in line]
    assert len(reported) == len(case["bad_lines"])
    for seq, message in zip(case["bad_lines"], reported, strict=True):
        assert f"events.jsonl:{seq + 1}: bad event line (seq {seq})" in message


def test_bad_line_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "cb").mkdir()
    (tmp_path / "cb" / "callbacks.conf").write_text("a.py = done-job-self\n")
    (tmp_path / "cb" / "a.py").write_text("pass\n")
    events = write_events(tmp_path / "ev.jsonl", [
        {"event": "complete", "type": "job", "job": {"id": 1}},
        "{broken",
        {"event": "complete", "type": "job", "job": 1},
    ])
    done = replay(str(tmp_path / "cb"), "--events", str(events), "--dry-run", "--format",
                  "json")
    assert done.returncode == 1
    assert [f["seq"] for f in json_lines(done.stdout)] == [0, 2]
    assert f"{events}:2: bad event line (seq 1): not JSON" in done.stderr


def test_directories_as_written_and_config_errors(tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    for d in (good, bad):
        d.mkdir()
        (d / "a.py").write_text("pass\n")
    (good / "callbacks.conf").write_text("a.py = complete-job-self\n")
    (bad / "callbacks.conf").write_text("a.py = complete-jbo-self\na.py = done-job-self\n")
    write_events(tmp_path / "ev.jsonl", [
        {"event": "complete", "type": "job", "job": {"id": 3}}])
    done = replay("$SITE/good, bad", "--events", "ev.jsonl", "--dry-run", "--format", "json",
                  cwd=tmp_path, env={"SITE": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout) == [
        {"seq": 0, "job": 3, "callback": "a.py", "directory": "$SITE/good",
         "trigger": "complete-job-self"},
        {"seq": 0, "job": 3, "callback": "a.py", "directory": "bad",
         "trigger": "done-job-self"},
    ]
    assert "QCB103" in done.stderr


def test_text_format_and_stdin(tmp_path: Path) -> None:
    line = json.dumps({"event": "failed", "type": "job", "job": {"id": 4}})
    done = subprocess.run(
        [sys.executable, "-m", "qbcallbacks", "replay", str(EXAMPLES), "--events", "-",
         "--dry-run"], input=line + "\n", capture_output=True, text=True, timeout=120,
        check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"0: logFailuresToDB.py in {EXAMPLES} for job 4 (failed-job-self <- failed-job-4)",
        f"0: mail-status.qcb in {EXAMPLES} for job 4 (done-job-self <- failed-job-4)",
    ]
