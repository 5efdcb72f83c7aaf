"""The `qbcallbacks` command as administrators run it: the installed console script in a
process of its own, then each command's output and status (run in the test process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import run_cli
from support.paths import ROOT

EXAMPLES = ROOT / "examples" / "callback"
SCRIPT = Path(sys.executable).parent / "qbcallbacks"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """The command run in this process (`support.cli`): what it prints and returns."""
    return run_cli(*args, cwd=cwd, env=env)


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "callbacks.conf").write_text(
        "ok.py = done-job-self\nbad.py = done-jbo-self\nmissing.py = done-job-self\n"
        "ok.py = done-job-self\n")
    (d / "ok.py").write_text("pass\n")
    (d / "bad.py").write_text("pass\n")
    for p in d.iterdir():
        p.chmod(0o644)
    return d


def test_check_examples_exits_zero() -> None:
    done = subprocess.run([str(SCRIPT), "check", str(EXAMPLES)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 callback(s) loaded" in done.stderr


def test_check_json_on_a_good_directory_is_an_empty_array() -> None:
    done = run("check", str(EXAMPLES), "--format", "json")
    assert done.returncode == 0
    assert json.loads(done.stdout) == []


def test_check_reports_errors_in_text_and_exits_one(broken: Path) -> None:
    done = run("check", str(broken))
    assert done.returncode == 1
    conf = broken / "callbacks.conf"
    assert f"{conf}:2:15: error: unknown event type 'jbo'" in done.stdout
    assert f"{conf}:3:1: error: script 'missing.py'" in done.stdout
    assert f"{conf}:4:1: warning: duplicate of line 1" in done.stdout


def test_check_json_contract(broken: Path) -> None:
    done = run("check", str(broken), "--format", "json")
    assert done.returncode == 1
    items = json.loads(done.stdout)
    assert [(i["line"], i["column"], i["severity"], i["code"]) for i in items] == [
        (2, 15, "error", "QCB103"), (3, 1, "error", "QCB112"), (4, 1, "warning", "QCB202")]
    for item in items:
        assert set(item) == {"file", "line", "column", "end_line", "end_column", "severity",
                             "code", "message"}
        assert item["file"] == str(broken / "callbacks.conf")


def test_comma_separated_path_and_qbdir_default(tmp_path: Path, broken: Path) -> None:
    done = run("check", f"{EXAMPLES},{broken}", "--format", "json")
    assert done.returncode == 1 and len(json.loads(done.stdout)) == 3
    qbdir = tmp_path / "qube"
    (qbdir / "callback").mkdir(parents=True)
    (qbdir / "callback" / "callbacks.conf").write_text("x.qcb = done-job-self\n")
    (qbdir / "callback" / "x.qcb").write_text("kill-self\n")
    env = {"PATH": "/usr/bin:/bin", "QBDIR": str(qbdir)}
    assert run("check", env=env).returncode == 0
    env["QBDIR"] = str(tmp_path / "none")
    missing = run("check", "--format", "json", env=env)
    assert missing.returncode == 0
    assert [i["code"] for i in json.loads(missing.stdout)] == ["QCB204"]


def test_usage_errors_exit_two() -> None:
    assert run("check", "--format", "xml").returncode == 2
    assert run("check", "--bogus").returncode == 2
    assert run("no-such-command").returncode == 2


def test_format_prints_canonical_text_and_check_mode(tmp_path: Path) -> None:
    conf = tmp_path / "callbacks.conf"
    conf.write_text("# hi\r\n  a.py=DONE-job-self   and b-work-x-*  # c\r\n")
    done = run_cli("format", str(conf), text=False)
    done.stdout = done.stdout.decode()  # bytes: text mode would turn CRLF into LF
    assert done.returncode == 0
    assert done.stdout == "# hi\r\na.py = done-job-self && b-work-x-* # c\r\n"
    assert run("format", "--check", str(conf)).returncode == 1
    conf.write_bytes(done.stdout.encode())
    assert run("format", "--check", str(conf)).returncode == 0


def test_format_qcb_and_refuses_broken_files(tmp_path: Path) -> None:
    prog = tmp_path / "x.qcb"
    prog.write_text("  MAIL-STATUS   # tell\n")
    assert run("format", str(prog)).stdout == "mail-status # tell\n"
    prog.write_text("nope-self\n")
    done = run("format", str(prog))
    assert done.returncode == 1 and "unknown qcb command 'nope-self'" in done.stderr


def test_check_shipped_broken_example_reports_every_line_in_one_run() -> None:
    done = run("check", str(ROOT / "examples" / "broken"), "--format", "json")
    assert done.returncode == 1
    found = [(Path(i["file"]).name, i["line"], i["column"], i["code"])
             for i in json.loads(done.stdout)]
    assert found == [
        ("callbacks.conf", 4, 1, "QCB101"), ("callbacks.conf", 5, 20, "QCB103"),
        ("callbacks.conf", 6, 16, "QCB104"), ("callbacks.conf", 7, 15, "QCB105"),
        ("callbacks.conf", 8, 29, "QCB106"), ("callbacks.conf", 9, 1, "QCB110"),
        ("callbacks.conf", 10, 1, "QCB111"), ("callbacks.conf", 11, 1, "QCB112"),
        ("callbacks.conf", 12, 1, "QCB202"), ("callbacks.conf", 13, 30, "QCB203"),
        ("commands.qcb", 2, 1, "QCB301"),
    ]
