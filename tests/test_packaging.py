"""The built wheel carries the grammars, and the installed package (not the tree) uses them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.paths import ROOT

GRAMMARS = {"common.lark", "trigger.lark", "callbacks.lark", "qcb.lark"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools leaves a build/ directory beside the sources.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "setup.py"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "spec", source / "spec")
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(source)], check=True, timeout=300)
    [built] = out.glob("qbcallbacks-*.whl")
    return built


def test_wheel_contains_the_grammars_and_the_type_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"qbcallbacks/lang/{g}" for g in GRAMMARS} <= names
    assert "qbcallbacks/py.typed" in names
    # The conformance vectors travel in the wheel, identical to spec/vectors.
    vectors = sorted((ROOT / "spec" / "vectors").glob("*.json"))
    assert vectors
    with zipfile.ZipFile(wheel) as z:
        for path in vectors:
            assert z.read(f"qbcallbacks/spec_vectors/{path.name}") == path.read_bytes()


def test_installed_wheel_parses_with_its_own_grammars(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    code = (
        "import qbcallbacks, qbcallbacks.lang as g;"
        f"assert qbcallbacks.__file__.startswith({str(target)!r}), qbcallbacks.__file__;"
        "print(qbcallbacks.parse_trigger('DONE-job-self and x-work-y-*').format());"
        "print(sorted(n for n in g.GRAMMAR_FILES if g.grammar_text(n).startswith('//')))"
    )
    # -I keeps the source tree and the editable install off sys.path; dependencies come from
    # this interpreter's site-packages, appended after the wheel's target directory.
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {"PYTHONPATH": ":".join([str(target), *site]), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first == "done-job-self && x-work-y-*"
    assert second == str(sorted(GRAMMARS))
