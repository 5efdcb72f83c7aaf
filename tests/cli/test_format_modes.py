"""`format` as a fixer: stdout, --write, --diff and --check on LF, CRLF and BOM files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import run_cli
from support.paths import EXAMPLES

SCRIPT = Path(sys.executable).parent / "qbcallbacks"
MESSY = ["# site callbacks", "  a.py=DONE-job-self   and b-work-x-*  # c", "m.qcb= done-job-self"]
CANON = ["# site callbacks", "a.py = done-job-self && b-work-x-* # c", "m.qcb = done-job-self"]
STYLES = {"lf": ("", "\n"), "crlf": ("", "\r\n"), "bom": ("\ufeff", "\n"),
          "bom-crlf": ("\ufeff", "\r\n")}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The command run in this process (`support.cli`): the bytes it prints, its status."""
    return run_cli(*args, cwd=cwd, text=False)


def text(lines: list[str], style: str) -> bytes:
    bom, end = STYLES[style]
    return (bom + end.join(lines) + end).encode()


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_mode_keeps_the_files_line_ends(tmp_path: Path, style: str) -> None:
    conf = tmp_path / "callbacks.conf"
    conf.write_bytes(text(MESSY, style))
    conf.chmod(0o640)

    shown = run("format", conf)
    assert shown.returncode == 0 and shown.stdout == text(CANON, style)

    check = run("format", "--check", conf)
    assert check.returncode == 1 and check.stdout.decode() == f"would reformat {conf}\n"
    assert conf.read_bytes() == text(MESSY, style)  # --check changes nothing

    diff = run("format", "--diff", conf)
    assert diff.returncode == 1
    lines = diff.stdout.decode().splitlines()
    assert lines[0] == f"--- {conf}" and lines[1].startswith(f"+++ {conf}")
    assert f"-{MESSY[1]}" in [ln.rstrip("\r") for ln in lines]
    assert f"+{CANON[1]}" in [ln.rstrip("\r") for ln in lines]

    write = run("format", "--write", conf)
    assert write.returncode == 0 and b"reformatted" in write.stderr
    assert conf.read_bytes() == text(CANON, style)
    assert conf.stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name != "callbacks.conf"]  # no temp left

    # Canonical now: every mode agrees, and check (the linter) agrees with format.
    assert run("format", "--check", conf).returncode == 0
    assert run("format", "--diff", conf).stdout == b""
    assert run("format", "--write", conf).stderr == b""


def test_line_ending_option_converts(tmp_path: Path) -> None:
    conf = tmp_path / "callbacks.conf"
    conf.write_bytes(text(CANON, "crlf"))
    assert run("format", "--check", conf).returncode == 0
    assert run("format", "--check", "--line-ending", "lf", conf).returncode == 1
    assert run("format", "--write", "--line-ending", "lf", conf).returncode == 0
    assert conf.read_bytes() == text(CANON, "lf")
    assert run("format", "--line-ending", "crlf", conf).stdout == text(CANON, "crlf")


def test_many_files_broken_files_and_misuse(tmp_path: Path) -> None:
    good = tmp_path / "a.qcb"
    good.write_text("mail-status\n")
    messy = tmp_path / "b.qcb"
    messy.write_text("  MAIL-STATUS\n")
    broken = tmp_path / "c.qcb"
    broken.write_text("nope-self\n")
    check = run("format", "--check", good, messy, broken)
    assert check.returncode == 1
    assert check.stdout.decode() == f"would reformat {messy}\n"
    assert b"unknown qcb command" in check.stderr
    assert run("format", "--write", good, messy).returncode == 0
    assert messy.read_text() == "mail-status\n"
    assert run("format", good, messy).returncode == 2  # which output would be which?
    assert run("format", "--write", "--check", good).returncode == 2
    missing = run("format", tmp_path / "none.qcb")
    assert missing.returncode == 2 and len(missing.stderr.decode().strip().splitlines()) == 1
    assert run("format", "--check", *sorted(EXAMPLES.glob("*.qcb")),
               EXAMPLES / "callbacks.conf").returncode == 0


def test_redirecting_a_file_onto_itself_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "callbacks.conf"
    conf.write_text("a.py = done-job-self\n")
    done = subprocess.run(f'"{SCRIPT}" format callbacks.conf > callbacks.conf', shell=True,
                          cwd=tmp_path, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2 and b"--write" in done.stderr
