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
    assert done.stdout.count("Passed") == 3
    conf = repo / "callback" / "callbacks.conf"
    canonical = conf.read_text()
    conf.write_text(canonical.replace("mail-status.qcb = ", "  mail-status.qcb=", 1))
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, timeout=60)
    fixed = pre_commit(repo, env)
    assert fixed.returncode == 1 and "files were modified by this hook" in fixed.stdout
    assert conf.read_text() == canonical


def git(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """git with the hook's report (which git commit sends to standard error) on stdout."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], cwd=repo, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180, check=False)


def test_deleting_a_named_script_fails_the_commit(tmp_path: Path) -> None:
    repo, env = make_repo(tmp_path, EXAMPLES)
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere" / "notes.txt").write_text("not callbacks\n")
    git(repo, env, "add", "-A")
    installed = subprocess.run([str(PRE_COMMIT), "install"], cwd=repo, env=env,
                               capture_output=True, text=True, timeout=120, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    first = git(repo, env, "commit", "-m", "callbacks")
    assert first.returncode == 0, first.stdout
    assert "qbcallbacks check (callback directories)" in first.stdout
    # A commit that touches no callback directory checks none and passes.
    (repo / "elsewhere" / "notes.txt").write_text("changed\n")
    git(repo, env, "add", "-A")
    assert git(repo, env, "commit", "-m", "notes").returncode == 0
    # Deleting a script that callbacks.conf names: no hook that runs on files sees it.
    git(repo, env, "rm", "-q", "callback/submitted.py")
    refused = git(repo, env, "commit", "-m", "drop a script")
    assert refused.returncode == 1, refused.stdout
    assert "callback/callbacks.conf:10:1: error: script 'submitted.py' is not in" \
        in refused.stdout
    assert "QCB112" in refused.stdout
    # Renaming it away is the same deletion.
    git(repo, env, "reset", "-q", "--hard")
    git(repo, env, "mv", "callback/checkWork.pl", "callback/checkwork.pl")
    renamed = git(repo, env, "commit", "-m", "rename a script")
    assert renamed.returncode == 1 and "'checkWork.pl' is not in" in renamed.stdout
    # Removing the directory whole leaves nothing to check.
    git(repo, env, "reset", "-q", "--hard")
    git(repo, env, "rm", "-q", "-r", "callback")
    assert git(repo, env, "commit", "-m", "no callbacks").returncode == 0


def test_staged_outside_a_repository_is_a_setup_error(tmp_path: Path) -> None:
    done = subprocess.run([str(BIN / "qbcallbacks"), "check", "--staged"], cwd=tmp_path,
                          env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "not a git repository" in done.stderr.lower()
    both = subprocess.run([str(BIN / "qbcallbacks"), "check", "--staged", "x"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert both.returncode == 2 and "--staged" in both.stderr
