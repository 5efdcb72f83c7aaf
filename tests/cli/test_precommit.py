"""The shipped `.pre-commit-hooks.yaml`, run by pre-commit itself on a temporary repository.

The hooks are used as `repo: local` with the same ids, entries and file patterns and
`language: system` pointing at this environment's command, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.paths import BROKEN, EXAMPLES, ROOT

BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def make_repo(tmp_path: Path, example: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "site"
    shutil.copytree(example, repo / "callback")
    for path in (repo / "callback").iterdir():
        path.chmod(0o644)
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    local = []
    for hook in hooks:
        command, _, args = hook["entry"].partition(" ")
        assert command == "qbcallbacks"
        local.append({**hook, "language": "system",
                      "entry": f"{BIN / 'qbcallbacks'} {args}"})
    (repo / ".pre-commit-config.yaml").write_text(json.dumps(
        {"repos": [{"repo": "local", "hooks": local}]}))
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path),
           "GIT_CONFIG_NOSYSTEM": "1", "PRE_COMMIT_COLOR": "never"}
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, timeout=60)
    return repo, env


def pre_commit(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PRE_COMMIT), "run", "--all-files"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_broken_example_fails_the_hooks(tmp_path: Path) -> None:
    repo, env = make_repo(tmp_path, BROKEN)
    done = pre_commit(repo, env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "qbcallbacks check" in done.stdout and "Failed" in done.stdout
    assert "callback/callbacks.conf:5:20: error: unknown event type 'jbo'" in done.stdout
    assert "callback/commands.qcb:2:1: error: unknown qcb command" in done.stdout


def test_good_example_passes_and_format_fixes_a_messy_file(tmp_path: Path) -> None:
    repo, env = make_repo(tmp_path, EXAMPLES)
    done = pre_commit(repo, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Passed") == 2
    conf = repo / "callback" / "callbacks.conf"
    canonical = conf.read_text()
    conf.write_text(canonical.replace("mail-status.qcb = ", "  mail-status.qcb=", 1))
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, timeout=60)
    fixed = pre_commit(repo, env)
    assert fixed.returncode == 1 and "files were modified by this hook" in fixed.stdout
    assert conf.read_text() == canonical
