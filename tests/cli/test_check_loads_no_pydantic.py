"""`qbcallbacks check` never imports pydantic: not on a clean directory, not on one with
errors, in no output format, not with `--fix`, and not while it finds its settings file,
its directories from a qb.conf, or its limits in the environment.

Importing pydantic and declaring a first model costs more than the rest of a `check`, which
pre-commit and editors run on every save. Each case runs the real command in a fresh process
and lists the modules loaded once it has returned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import BROKEN, EXAMPLES, ROOT

#: Runs the command line as the console script does, then writes what it loaded to stderr
#: (after a marker line) and exits with the command's code.
PROBE = """
import sys
from qbcallbacks.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("--modules--", *sorted(sys.modules), sep="\\n", file=sys.stderr)
sys.exit(code)
"""


def run_check(*args: str, cwd: Path, env: dict[str, str] | None = None,
              ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    _, marker, listing = done.stderr.partition("--modules--\n")
    assert marker, done.stderr
    return done, set(listing.split())


def pydantic_modules(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m == "pydantic" or m.startswith(("pydantic.", "pydantic_"))}


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the broken examples (errors and warnings of every kind), with a settings
    file next to it so that the settings lookup reads one."""
    target = tmp_path / "broken"
    shutil.copytree(BROKEN, target)
    (tmp_path / "qbcallbacks.toml").write_text('ignore = ["QCB202"]\n', encoding="utf-8")
    return target


@pytest.mark.parametrize("fmt", ["text", "concise", "json", "sarif", "junit", "gitlab"])
def test_a_check_with_findings_loads_no_pydantic(broken: Path, fmt: str) -> None:
    done, loaded = run_check(str(broken), "--format", fmt, cwd=broken.parent)
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip()  # the findings were printed
    if fmt == "json":
        found = json.loads(done.stdout)
        assert found and {d["code"] for d in found} >= {"QCB103"}
        assert "QCB202" not in {d["code"] for d in found}  # the settings file was read
    assert "qbcallbacks.cli._settings" in loaded
    assert pydantic_modules(loaded) == set()


def test_a_clean_check_loads_no_pydantic() -> None:
    done, loaded = run_check(str(EXAMPLES), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "0 error(s)" in done.stderr
    assert "qbcallbacks.config.load" in loaded
    assert pydantic_modules(loaded) == set()


def test_fixing_loads_no_pydantic(broken: Path) -> None:
    before = (broken / "callbacks.conf").read_text(encoding="utf-8")
    done, loaded = run_check(str(broken), "--fix", "--unsafe-fixes", cwd=broken.parent)
    assert done.returncode == 1, done.stderr
    assert (broken / "callbacks.conf").read_text(encoding="utf-8") != before
    assert "qbcallbacks.cli._fix" in loaded
    assert pydantic_modules(loaded) == set()


def test_finding_directories_and_limits_loads_no_pydantic(tmp_path: Path) -> None:
    """No path: the directories come from $QB_CONF's callback path; the limits from the
    environment."""
    site = tmp_path / "callback"
    shutil.copytree(EXAMPLES, site)
    qbconf = tmp_path / "qb.conf"
    qbconf.write_text(f"supervisor_universal_callback_path = {site}\n", encoding="utf-8")
    env = {**os.environ, "QB_CONF": str(qbconf), "QBCALLBACKS_MAX_DIAGNOSTICS": "5"}
    done, loaded = run_check(cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "loaded from 1 directory" in done.stderr
    assert "qbcallbacks.config.qbconf" in loaded
    assert pydantic_modules(loaded) == set()


def test_the_console_entry_point_imports_no_pydantic() -> None:
    """`python -m qbcallbacks check` with `-X importtime`: every import is listed."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "qbcallbacks", "check",
                           str(BROKEN)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]
    assert "qbcallbacks.config.load" in imported
    assert [m for m in imported if m.startswith("pydantic")] == []
