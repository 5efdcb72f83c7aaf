"""Files that are not what they claim: special files, links out, huge files, unreadable
directories, failing reads. Each gets its own diagnostic, no traceback, and no read at all
(the file is never opened) or a bounded one (peak memory stays small)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbcallbacks import load_directory
from qbcallbacks.config import load as load_module
from qbcallbacks.config.qbconf import QbConfError, read_qbconf
from qbcallbacks.errors import SourceError
from qbcallbacks.lang.source import read_source_file
from qbcallbacks.model.limits import Limits

MB = 1 << 20


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path passed to os.open while the test runs."""
    paths: list[str] = []
    real_open = os.open

    def spy(path: str, flags: int, *args: int, **kwargs: object) -> int:
        paths.append(os.fspath(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    yield paths


def codes(directory: Path, limits: Limits | None = None) -> list[str]:
    return [d.code for d in load_directory(str(directory), limits=limits).diagnostics]


def cb_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cb"
    d.mkdir()
    return d


def test_fifo_config_is_reported_and_never_opened(tmp_path: Path, opened: list[str]) -> None:
    d = cb_dir(tmp_path)
    os.mkfifo(d / "callbacks.conf")
    assert codes(d) == ["QCB012"]
    assert not any(p.endswith("callbacks.conf") for p in opened)


def test_directory_config_is_reported(tmp_path: Path, opened: list[str]) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").mkdir()
    assert codes(d) == ["QCB012"]
    assert opened == []


def test_link_to_dev_zero_leaves_the_directory(tmp_path: Path, opened: list[str]) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").symlink_to("/dev/zero")
    assert codes(d) == ["QCB011"]
    assert opened == []


def test_link_to_a_system_file_is_not_followed_or_echoed(tmp_path: Path,
                                                        opened: list[str]) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0:secret line\n")
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").symlink_to(outside)
    load = load_directory(str(d))
    assert [x.code for x in load.diagnostics] == ["QCB011"]
    assert all(x.source_line is None for x in load.diagnostics)
    assert opened == []


def test_link_inside_the_directory_is_read(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "real.conf").write_text("a.py = done-job-self\n")
    (d / "a.py").write_text("x = 1\n")
    (d / "callbacks.conf").symlink_to("real.conf")
    load = load_directory(str(d))
    assert load.diagnostics == () and len(load.rules) == 1


def test_huge_config_is_rejected_by_its_size_alone(tmp_path: Path, opened: list[str]) -> None:
    d = cb_dir(tmp_path)
    with open(d / "callbacks.conf", "wb") as f:
        f.truncate(5 * MB)  # sparse: as big as the limit sees, nothing to read
    assert codes(d, Limits(max_config_bytes=MB)) == ["QCB007"]
    assert opened == []


def test_huge_scripts_are_not_checked(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("big.py = done-job-self\nbig.qcb = done-job-self\n")
    for name in ("big.py", "big.qcb"):
        with open(d / name, "wb") as f:
            f.truncate(60 * MB)
    tracemalloc.start()
    try:
        found = codes(d)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == ["QCB009", "QCB008"]
    assert peak < 5 * MB


def test_unreadable_directory_is_a_diagnostic(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("a.py = done-job-self\n")
    real_lstat = os.lstat

    def denied(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path).startswith(str(d) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_lstat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", denied)
    assert codes(d) == ["QCB013"]


def test_parent_that_cannot_be_entered_is_a_diagnostic(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    d = cb_dir(tmp_path)
    real_stat = os.stat

    def denied(path: str | os.PathLike[str], *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path) == str(d):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", denied)
    assert codes(d) == ["QCB013"]


def test_read_error_is_a_diagnostic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("a.py = done-job-self\n")

    def failing(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "read", failing)
    assert codes(d) == ["QCB015"]


def test_running_out_of_memory_is_a_diagnostic(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("a.py = done-job-self\n")

    def exhausted(*args: object, **kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr(load_module, "scan_config", exhausted)
    assert codes(d) == ["QCB014"]


def test_not_utf8_is_still_qcb001(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_bytes(b"a.py = done-job-\xff\n")
    assert codes(d) == ["QCB001"]


def test_shared_reader_refuses_devices_and_fifos(tmp_path: Path, opened: list[str]) -> None:
    fifo = tmp_path / "pipe.conf"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(SourceError) as info:
            read_source_file(path)
        assert [x.code for x in info.value.diagnostics] == ["QCB012"]
    assert opened == []


def test_qbconf_reader_refuses_a_fifo(tmp_path: Path, opened: list[str]) -> None:
    fifo = tmp_path / "qb.conf"
    os.mkfifo(fifo)
    with pytest.raises(QbConfError, match="QCB012"):
        read_qbconf(fifo)
    assert opened == []


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qbcallbacks", *args], capture_output=True,
                          text=True, timeout=60, check=False,
                          env=None if env is None else {**os.environ, **env})


def test_limits_are_set_from_the_environment(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "a.py").write_text("pass\n")
    (d / "callbacks.conf").write_text("a.py = " + " || ".join(["done-job-self"] * 20) + "\n")
    assert run_cli("check", str(d)).returncode == 0
    done = run_cli("check", "--format", "json", str(d),
                   env={"QBCALLBACKS_MAX_LINE_LENGTH": "100"})
    assert done.returncode == 1
    assert [x["code"] for x in json.loads(done.stdout)] == ["QCB006"]


def test_format_refuses_special_files_without_a_traceback(tmp_path: Path) -> None:
    fifo = tmp_path / "callbacks.conf"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        done = run_cli("format", path)
        assert done.returncode == 1
        assert "[QCB012]" in done.stderr and "Traceback" not in done.stderr
    assert run_cli("format", str(tmp_path / "missing.conf")).returncode == 2


def test_check_shows_control_characters_escaped(tmp_path: Path) -> None:
    d = tmp_path / "cb\x1b]0;t\x07"
    d.mkdir()
    (d / "callbacks.conf").write_text("a.py = done-job-self \x1b]0;owned\x07\n")
    done = run_cli("check", str(d))
    assert done.returncode == 1
    assert "\x1b" not in done.stdout
    assert "\\x1b]0;owned\\x07" in done.stdout and "cb\\x1b]0;t\\x07" in done.stdout
    as_json = run_cli("check", "--format", "json", str(d))
    assert json.loads(as_json.stdout)[0]["file"] == str(d / "callbacks.conf")


def test_many_lines_naming_missing_scripts_are_capped(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("".join(f"gone{i}.py = done-job-self\n"
                                              for i in range(5000)))
    tracemalloc.start()
    try:
        load = load_directory(str(d), limits=Limits(max_diagnostics=20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [x.code for x in load.diagnostics] == ["QCB112"] * 20 + ["QCB010"]
    assert load.diagnostics[-1].message.startswith("4980 more problem(s)")
    assert peak < 20 * MB


def test_cli_turns_running_out_of_memory_into_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    from qbcallbacks.cli import _targets, main

    def exhausted(*args: object, **kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr(_targets, "load_directory", exhausted)
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err


def test_a_script_the_compiler_cannot_take_is_a_diagnostic(tmp_path: Path) -> None:
    d = cb_dir(tmp_path)
    (d / "callbacks.conf").write_text("deep.py = done-job-self\n")
    (d / "deep.py").write_text("x = " + "-" * 200_000 + "1\n")
    assert codes(d) == ["QCB014"]


def test_a_nul_byte_in_a_qb_conf_callback_path_is_a_warning_not_a_traceback(tmp_path: Path
                                                                           ) -> None:
    from qbcallbacks.config.load import load_callback_path
    from qbcallbacks.config.qbconf import parse_qbconf

    conf = parse_qbconf("supervisor_universal_callback_path = ~us\0er/cb,$X\0\n")
    dirs = conf.callback_path(env={})
    assert len(dirs) == 2 and all("\0" in d for d in dirs)
    loaded = load_callback_path(dirs, env={})
    assert [(d.code, d.severity) for d in loaded.diagnostics] == [("QCB204", "warning")] * 2
    assert "NUL byte" in loaded.diagnostics[0].message
