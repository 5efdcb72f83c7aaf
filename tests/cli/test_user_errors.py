"""No traceback from a user's mistake: one line and exit 2; failed callbacks exit 1; a closed
pipe is quiet; `simulate` and `replay` share their run options."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qbcallbacks.cli import COMMANDS
from support.cli import run_cli
from support.paths import EXAMPLES

SCRIPT = Path(sys.executable).parent / "qbcallbacks"
SUBMIT = '{"event": "submit", "type": "job", "job": {"id": 5, "label": "a"}}\n'


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command run in this process (`support.cli`): what it prints and returns. The
    closed pipe and `--follow` below need a real process and start one."""
    return run_cli(*args, cwd=cwd)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture()
def slow_dir(tmp_path: Path) -> Path:
    d = tmp_path / "slow"
    d.mkdir()
    (d / "callbacks.conf").write_text("slow.py = submit-job-self\n")
    (d / "slow.py").write_text("import time\ntime.sleep(60)\n")
    for p in d.iterdir():
        p.chmod(0o644)
    return d


def test_environment_mistakes_are_one_line_with_exit_two(tmp_path: Path) -> None:
    notadb = tmp_path / "notadb.db"
    notadb.write_text("just some text, not SQLite at all\n" * 20)
    assert "notadb.db" in one_line_error(run("history", "--audit", notadb))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE unrelated (x)")
    assert "not a readable audit database" in one_line_error(run("history", "--audit", other))
    assert "notadb.db" in one_line_error(run(
        "simulate", EXAMPLES, "--audit", notadb, "--workdir", tmp_path / "run",
        "--no-progress"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "--workdir" in one_line_error(run(
        "simulate", EXAMPLES, "--workdir", blocker / "sub", "--no-progress"))
    assert "--workdir" in one_line_error(run(
        "replay", EXAMPLES, "--events", "-", "--execute", "--workdir", blocker / "sub"))


def test_an_audit_database_that_is_a_fifo_or_a_device_is_refused_without_opening_it(
        tmp_path: Path) -> None:
    """Opening a FIFO would wait for a writer for ever; a device would be written to."""
    fifo = tmp_path / "audit.db"
    os.mkfifo(fifo)
    for args, where in ((("history", "--audit", fifo), "a FIFO"),
                        (("history", "--audit", "/dev/zero"), "a device"),
                        (("simulate", EXAMPLES, "--audit", fifo, "--workdir", tmp_path / "run",
                          "--no-progress"), "a FIFO"),
                        (("simulate", EXAMPLES, "--audit", "/dev/null", "--workdir",
                          tmp_path / "run", "--no-progress"), "a device")):
        line = one_line_error(run(*args))
        assert f"it is {where}, not a regular file" in line, line


def test_an_events_stream_without_line_ends_is_read_no_further_than_one_long_line(
        tmp_path: Path) -> None:
    """`/dev/zero` never ends a line: the replay reports the first megabyte as one bad line
    and stops, instead of reading (and holding) the stream for ever."""
    for mode in ("--dry-run", "--execute"):
        done = run("replay", EXAMPLES, "--events", "/dev/zero", mode, "--no-progress",
                   "--workdir", tmp_path / mode.strip("-"))
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert ("/dev/zero:1: bad event line (seq 0): longer than 1048576 bytes; the rest of "
                "the stream is not read") in done.stderr


def test_history_time_and_session_errors_name_the_option(tmp_path: Path) -> None:
    assert "'--since'" in run("history", "--since", "yesterday").stderr
    assert "'--until'" in run("history", "--until", "soon").stderr
    assert "'--session'" in run("history", "--session", "first").stderr
    assert run("history", "--session", "0").returncode == 2


def test_top_level_help_lists_every_command() -> None:
    done = run("--help")
    assert done.returncode == 0
    for name in COMMANDS:
        assert f"  {name} " in done.stdout, name
    assert run("rule", "QCB103").stdout == run("explain", "qcb103").stdout


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    big = tmp_path / "cb"
    big.mkdir()
    (big / "callbacks.conf").write_text("x.qcb = done-jbo-self\n" * 5000)
    done = subprocess.run(f'"{SCRIPT}" check "{big}" | head -1', shell=True, text=True,
                          capture_output=True, timeout=120, check=False,
                          executable="/bin/bash")
    assert done.stdout.count("\n") == 1 and "QCB103" in done.stdout
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr
    # The reader is gone before the first write: the write fails for certain.
    closed = subprocess.Popen([str(SCRIPT), "check", str(big)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    assert closed.stdout is not None and closed.stderr is not None
    closed.stdout.close()
    err = closed.stderr.read()
    closed.stderr.close()
    assert closed.wait(timeout=120) == 141
    assert err == b""


def test_simulate_exits_one_when_a_callback_times_out(tmp_path: Path, slow_dir: Path) -> None:
    args = ("simulate", slow_dir, "--groups", "1", "--frames", "1", "--timeout", "0.5",
            "--no-progress")
    done = run(*args, "--workdir", tmp_path / "a")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stdout and "timeout" in done.stdout
    allowed = run(*args, "--workdir", tmp_path / "b", "--allow-failures", "--format", "json")
    assert allowed.returncode == 0
    summary = json.loads(allowed.stdout)
    assert summary["failed"] >= 1 and summary["callbacks"]["slow.py"].get("timeout", 0) >= 1


def test_replay_runs_only_with_execute_and_exits_one_on_timeout(tmp_path: Path,
                                                                 slow_dir: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(SUBMIT)
    dry = run("replay", slow_dir, "--events", events, "--workdir", tmp_path / "dry")
    assert dry.returncode == 0 and "slow.py" in dry.stdout
    assert not (tmp_path / "dry").exists()  # nothing ran
    done = run("replay", slow_dir, "--events", events, "--execute", "--timeout", "0.5",
               "--workdir", tmp_path / "run", "--no-progress", "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["callbacks"] == {"slow.py": {"timeout": 1}}
    assert run("replay", slow_dir, "--events", events, "--execute", "--dry-run").returncode == 2
    both = run("replay", slow_dir, "--events", events, "--qbconf", events)
    assert both.returncode == 2 and "not both" in both.stderr


def test_simulate_prints_diagnostics_like_check(tmp_path: Path) -> None:
    work = tmp_path / "site"
    (work / "cb").mkdir(parents=True)
    (work / "cb" / "callbacks.conf").write_text(
        "x.qcb = done-job-self\nvery-long-name-" + "x" * 150 + ".qcb = done-jbo-self\n")
    (work / "cb" / "x.qcb").write_text("mail-status\n")
    done = run("simulate", "cb", "--groups", "1", "--frames", "1", "--no-progress",
               "--workdir", tmp_path / "run", cwd=work)
    expected = run("check", "cb", cwd=work).stdout
    assert expected.strip() and expected.strip() in done.stderr
    assert str(tmp_path) not in done.stderr.split("\n")[0]


def test_history_sessions_json_lines_and_follow(tmp_path: Path) -> None:
    audit = tmp_path / "audit.db"
    for n in (1, 2):
        code = run("simulate", EXAMPLES, "--groups", str(n), "--frames", "1", "--no-progress",
                   "--mode", "in-process", "--workdir", tmp_path / "run", "--audit", audit)
        assert code.returncode in (0, 1), code.stderr
    latest = [json.loads(x) for x in run("history", "--audit", audit,
                                         "--json-lines").stdout.splitlines()]
    every = json.loads(run("history", "--audit", audit, "--session", "all",
                           "--format", "json").stdout)
    first = json.loads(run("history", "--audit", audit, "--session", "1",
                           "--format", "json").stdout)
    assert latest and first and len(every) == len(latest) + len(first)
    assert {r["session"] for r in latest} == {2} and {r["session"] for r in first} == {1}
    text = run("history", "--audit", audit)
    assert text.stdout.splitlines()[0].split()[:3] == ["id", "queued", "job"]
    assert f"{len(latest)} firing(s), session 2" in text.stderr

    follow = subprocess.Popen([str(SCRIPT), "history", "--audit", str(audit), "--follow",
                               "--json-lines", "--interval", "0.1"],
                              stdout=subprocess.PIPE, text=True)
    guard = threading.Timer(120, follow.kill)  # a silent --follow fails the test, never hangs it
    guard.start()
    try:
        assert follow.stdout is not None
        seen = [json.loads(follow.stdout.readline()) for _ in latest]
        assert [r["id"] for r in seen] == [r["id"] for r in latest]
        run("simulate", EXAMPLES, "--groups", "1", "--frames", "1", "--no-progress",
            "--mode", "in-process", "--workdir", tmp_path / "run", "--audit", audit)
        fresh = json.loads(follow.stdout.readline())  # the third run's firings arrive
        assert fresh["session"] == 3
    finally:
        guard.cancel()
        follow.terminate()
        follow.wait(timeout=30)
        if follow.stdout is not None:
            follow.stdout.close()
