"""Every command example of the README runs and prints what the README shows.

An example is a fenced block of `$ command` lines, each followed by the output it shows
(standard output, then standard error). A `...` line stands for any number of lines, and
nothing else is skipped: an example that shows part of the output says so. Times and
durations vary from run to run and are compared as placeholders. The examples run in order in
one scratch directory where `examples` is the repository's, as a reader would run them from a
checkout; commands that start a service or need a broker are listed in `NOT_RUN` with why.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import run_cli
from support.paths import ROOT

BIN = Path(sys.executable).parent
#: Examples that run for ever or need a server the tests do not start.
NOT_RUN = {
    "qbcallbacks adapt flamenco": "needs an MQTT broker and a Flamenco Manager "
                                  "(tests/adapters runs the adapter against stand-ins)",
}
_VARYING = [
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\b\d+\.\d+ ?s\b"), "<seconds>"),
]


def examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, shown output lines) for every `$ ` line of the document's plain blocks."""
    found: list[tuple[str, list[str]]] = []
    for lines in _plain_blocks(text):
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            command = lines[i][2:]
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            i += 1
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            found.append((command, shown))
    return found


def _plain_blocks(text: str) -> list[list[str]]:
    """The lines of each fenced block that names no language."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    plain = False
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current, plain = [], line.strip() == "```"
            else:
                if plain:
                    blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _normal(line: str) -> str:
    for pattern, placeholder in _VARYING:
        line = pattern.sub(placeholder, line)
    return line.rstrip()


def matches(shown: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `shown` with each `...` line standing for any run of lines."""
    want = [_normal(line) for line in shown]
    got = [_normal(line) for line in actual]
    memo: dict[tuple[int, int], bool] = {}

    def walk(i: int, j: int) -> bool:
        if (i, j) not in memo:
            if i == len(want):
                result = j == len(got)
            elif want[i] == "...":
                result = any(walk(i + 1, k) for k in range(j, len(got) + 1))
            else:
                result = j < len(got) and want[i] == got[j] and walk(i + 1, j + 1)
            memo[(i, j)] = result
        return memo[(i, j)]

    return walk(0, 0)


README_EXAMPLES = examples((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_command_examples() -> None:
    commands = [c for c, _ in README_EXAMPLES]
    assert len(commands) >= 12
    assert any(c.startswith("qbcallbacks replay") for c in commands)


def test_the_matcher_needs_every_shown_line() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert not matches(["a", "d"], ["a", "b", "c", "d"])
    assert not matches(["a", "b"], ["a", "b", "c"])
    assert matches(["in 1.00 s", "..."], ["in 2.51 s"])


def test_every_readme_command_prints_what_the_readme_shows(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", COLUMNS="100")
    failures = []
    ran = 0
    for command, shown in README_EXAMPLES:
        if any(command.startswith(prefix) for prefix in NOT_RUN):
            continue
        done = run(command, tmp_path, env)
        ran += 1
        actual = (done.stdout + done.stderr).splitlines()
        if done.returncode not in (0, 1) or not matches(shown, actual):
            failures.append(f"$ {command}  (exit {done.returncode})\n--- shown\n"
                            + "\n".join(shown) + "\n--- printed\n" + "\n".join(actual))
    assert ran >= 12
    assert not failures, "\n\n".join(failures)


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A plain `qbcallbacks ...` line runs in this process (`support.cli`: the same output
    and status, without a process start); any other line, through the shell."""
    words = command.split()
    if words[0] == "qbcallbacks" and not set(command) & set("|&;<>()$`\\\"'*?[]~#="):
        return run_cli(*words[1:], cwd=cwd, env=env)
    return subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.parametrize("prefix", sorted(NOT_RUN))
def test_examples_not_run_exist(prefix: str) -> None:
    assert any(c.startswith(prefix) for c, _ in README_EXAMPLES)
