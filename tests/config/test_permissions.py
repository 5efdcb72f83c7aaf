"""The StrictModes check: who besides root and the supervisor's user could change a callback.

We run as root here; a non-root engine is simulated by giving the check another euid.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qbcallbacks.config.load import load_directory
from qbcallbacks.config.permissions import directory_problems, file_problems

ROOT_EUID = 0
USER_EUID = 4242  # an unprivileged supervisor user
OTHER_UID = 4343  # somebody else


@pytest.fixture
def cbdir(tmp_path: Path) -> Path:
    parent = tmp_path / "qube"
    parent.mkdir(mode=0o755)
    d = parent / "callback"
    d.mkdir(mode=0o755)
    (d / "callbacks.conf").write_text("a.py = done-job-self\n")
    (d / "a.py").write_text("print('a')\n")
    for p in (parent, d, d / "callbacks.conf", d / "a.py"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return d


def _chown(path: Path, uid: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(path, uid, -1)


def _codes(diags: list) -> list[tuple[str, str]]:
    return sorted((d.code, d.severity) for d in diags)


def test_a_safe_directory_has_no_problem(cbdir: Path) -> None:
    for euid in (ROOT_EUID, os.geteuid()):
        assert directory_problems(cbdir, euid=euid) == []
        assert file_problems(cbdir / "a.py", "c", euid=euid) == []


def test_a_0777_directory_is_an_error_as_root_and_a_warning_otherwise(cbdir: Path) -> None:
    cbdir.chmod(0o777)
    assert _codes(directory_problems(cbdir, euid=ROOT_EUID)) == [("QCB210", "error")]
    # As an unprivileged user, root-owned files are still trusted; only the mode is reported.
    assert ("QCB210", "warning") in _codes(directory_problems(cbdir, euid=USER_EUID))


def test_a_group_writable_parent_is_reported(cbdir: Path) -> None:
    cbdir.parent.chmod(0o775)
    [diag] = directory_problems(cbdir, euid=ROOT_EUID)
    assert (diag.code, diag.severity) == ("QCB212", "error")
    assert str(cbdir.parent) in diag.message
    assert ("QCB212", "warning") in _codes(directory_problems(cbdir, euid=USER_EUID))


def test_a_sticky_root_owned_parent_is_accepted(cbdir: Path) -> None:
    if os.stat(cbdir.parent).st_uid != 0 and os.geteuid() != 0:
        pytest.skip("needs a root-owned parent")
    cbdir.parent.chmod(0o1777)
    assert directory_problems(cbdir, euid=ROOT_EUID) == []


def test_a_foreign_owner_is_reported(cbdir: Path) -> None:
    _chown(cbdir / "a.py", OTHER_UID)
    assert _codes(file_problems(cbdir / "a.py", "c", euid=ROOT_EUID)) == [("QCB211", "error")]
    assert _codes(file_problems(cbdir / "a.py", "c", euid=USER_EUID)) == [
        ("QCB211", "warning")]
    # the supervisor's own user is trusted like root
    assert file_problems(cbdir / "a.py", "c", euid=OTHER_UID) == []
    _chown(cbdir, OTHER_UID)
    assert ("QCB211", "error") in _codes(directory_problems(cbdir, euid=ROOT_EUID))
    _chown(cbdir.parent, OTHER_UID)
    assert ("QCB213", "error") in _codes(directory_problems(cbdir, euid=ROOT_EUID))


def test_the_loader_refuses_an_unsafe_directory_when_root(cbdir: Path) -> None:
    cbdir.chmod(0o777)
    load = load_directory(str(cbdir))
    assert [d.code for d in load.diagnostics] == ["QCB210"]
    if os.geteuid() == 0:
        assert load.rules == () and load.diagnostics[0].severity == "error"
    else:
        assert [r.file for r in load.rules] == ["a.py"]


def test_the_loader_refuses_a_foreign_script_when_root(cbdir: Path) -> None:
    _chown(cbdir / "a.py", OTHER_UID)
    load = load_directory(str(cbdir))
    assert [(d.code, d.severity) for d in load.diagnostics] == [("QCB211", "error")]
    assert load.rules == ()
