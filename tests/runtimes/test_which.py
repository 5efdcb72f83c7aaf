"""The script checkers find Perl on the search path as `shutil.which` does (without shutil)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qbcallbacks.runtimes.validate import _which


def test_the_search_path_is_read_as_shutil_reads_it(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    plain, runnable, late = tmp_path / "plain", tmp_path / "runnable", tmp_path / "late"
    for directory in (plain, runnable, late):
        directory.mkdir()
    (plain / "perl").write_text("not executable\n")
    (runnable / "perl").mkdir()  # a directory is never the program
    (late / "perl").write_text("#!/bin/sh\n")
    (late / "perl").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (plain, runnable, late))))
    names = ["perl", "absent", str(late / "perl"), str(plain / "perl"), str(runnable / "perl")]
    assert [_which(n) for n in names] == [shutil.which(n) for n in names]
    assert _which("perl") == str(late / "perl")
    monkeypatch.setenv("PATH", str(plain))
    assert _which("perl") is None
