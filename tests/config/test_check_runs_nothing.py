"""`check` runs no code of the scripts it checks, unless --compile-perl says it will."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qbcallbacks.config.load import load_callback_path

SCRIPT = Path(sys.executable).parent / "qbcallbacks"
needs_ppi = pytest.mark.skipif(
    shutil.which("perl") is None
    or subprocess.run(["perl", "-MPPI", "-e1"], capture_output=True, check=False).returncode,
    reason="perl with PPI (Debian: libppi-perl) is not installed")


def hostile_dir(tmp_path: Path, marker: Path) -> Path:
    d = tmp_path / "cb"
    d.mkdir()
    (d / "callbacks.conf").write_text("a.pl = done-job-self\nb.py = done-job-self\n"
                                      "c.pl = done-job-self\n")
    (d / "a.pl").write_text(f"BEGIN {{ open(my $f, '>', '{marker}.begin'); close $f }}\n"
                            "print 1;\n")
    (d / "b.py").write_text(f"open({str(marker)!r} + '.py', 'w')\n")
    (d / "c.pl").write_text(f"use lib '.'; BEGIN {{ system('touch', '{marker}.use') }}\n"
                            "if (1) {\n")
    for p in d.iterdir():
        p.chmod(0o644)
    return d


@needs_ppi
def test_check_creates_no_marker_and_still_finds_the_syntax_error(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    d = hostile_dir(tmp_path, marker)
    done = subprocess.run([str(SCRIPT), "check", "--format", "json", str(d)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert list(tmp_path.glob("marker*")) == []
    assert '"QCB402"' in done.stdout and "c.pl" in done.stdout
    loaded = load_callback_path([str(d)])
    assert list(tmp_path.glob("marker*")) == []
    assert sorted(r.file for r in loaded.rules) == ["a.pl", "b.py"]


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_compile_perl_is_explicit_and_does_run_begin_blocks(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    d = hostile_dir(tmp_path, marker)
    done = subprocess.run([str(SCRIPT), "check", "--compile-perl", str(d)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1  # c.pl does not compile
    assert (tmp_path / "marker.begin").exists()  # what the flag's help warns about
    assert not (tmp_path / "marker.py").exists()
    help_text = subprocess.run([str(SCRIPT), "check", "--help"], capture_output=True,
                               text=True, check=False).stdout
    assert "RUNS their BEGIN blocks" in " ".join(help_text.split())
