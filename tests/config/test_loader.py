"""Loading callback directories from disk: scripts, links, permissions, paths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qbcallbacks import expand_callback_path, load_callback_path, load_directory


def make_dir(root: Path, conf: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "callbacks.conf").write_text(conf)
    (root / "callbacks.conf").chmod(0o644)
    for name, text in files.items():
        (root / name).write_text(text)
        (root / name).chmod(0o644)
    return root


def codes(load: object) -> list[tuple[str, int, str]]:
    return [(Path(d.file).name, d.line, d.code) for d in load.diagnostics]  # type: ignore[attr-defined]


def test_good_directory_loads_rules_in_line_order(tmp_path: Path) -> None:
    d = make_dir(tmp_path / "cb", "# c\na.py = done-job-self\n\nb.qcb = submit-job-self\n",
                 {"a.py": "x = 1\n", "b.qcb": "unblock-self\n"})
    load = load_directory(str(d))
    assert load.diagnostics == ()
    assert [(r.file, r.language, r.line, r.position) for r in load.rules] == [
        ("a.py", "python", 2, 0), ("b.qcb", "qcb", 4, 1)]


def test_missing_script_is_an_error_on_its_line_and_others_still_load(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "gone.py = done-job-self\nhere.py = done-job-self\n",
                 {"here.py": ""})
    load = load_directory(str(d))
    assert codes(load) == [("callbacks.conf", 1, "QCB112")]
    assert [r.file for r in load.rules] == ["here.py"]


def test_link_leaving_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("")
    d = make_dir(tmp_path / "cb", "evil.py = done-job-self\ninner.py = done-job-self\n",
                 {"real.py": ""})
    (d / "evil.py").symlink_to(outside)
    (d / "inner.py").symlink_to(d / "real.py")
    load = load_directory(str(d))
    assert codes(load) == [("callbacks.conf", 1, "QCB113")]
    assert [r.file for r in load.rules] == ["inner.py"]


def test_script_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "dir.py = done-job-self\n", {})
    (d / "dir.py").mkdir()
    assert codes(load_directory(str(d))) == [("callbacks.conf", 1, "QCB114")]


def test_group_or_world_writable_script_is_reported(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "a.py = done-job-self\nb.py = done-job-self\n",
                 {"a.py": "", "b.py": ""})
    (d / "a.py").chmod(0o666)
    load = load_directory(str(d))
    assert codes(load) == [("callbacks.conf", 1, "QCB201")]
    assert "group and others" in load.diagnostics[0].message
    # An error when the engine runs as root (the rule is not loaded), a warning otherwise.
    root = os.geteuid() == 0
    assert load.diagnostics[0].severity == ("error" if root else "warning")
    assert [r.file for r in load.rules] == (["b.py"] if root else ["a.py", "b.py"])


def test_group_writable_conf_is_reported(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "a.py = done-job-self\n", {"a.py": ""})
    (d / "callbacks.conf").chmod(0o664)
    load = load_directory(str(d))
    assert codes(load) == [("callbacks.conf", 1, "QCB201")]
    assert "writable by group" in load.diagnostics[0].message
    assert len(load.rules) == (0 if os.geteuid() == 0 else 1)


def test_python_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "bad.py = done-job-self\n", {"bad.py": "x = 1\nif x\n    pass\n"})
    load = load_directory(str(d))
    [diag] = load.diagnostics
    assert (Path(diag.file).name, diag.line, diag.code) == ("bad.py", 2, "QCB401")
    assert load.rules == ()


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_perl_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "bad.pl = done-job-self\nok.pl = done-job-self\n",
                 {"bad.pl": "my $x = 1;\nsub f { 1;\n", "ok.pl": "my $x = 1;\n"})
    load = load_directory(str(d))
    assert [(Path(x.file).name, x.line, x.code) for x in load.diagnostics] == [
        ("bad.pl", 2, "QCB402")]
    assert [r.file for r in load.rules] == ["ok.pl"]


def test_unknown_qcb_command_is_reported_in_the_qcb_file(tmp_path: Path) -> None:
    d = make_dir(tmp_path, "x.qcb = done-job-self\n", {"x.qcb": "# c\nunblock-self\nfrob-self\n"})
    load = load_directory(str(d))
    [diag] = load.diagnostics
    assert (Path(diag.file).name, diag.line, diag.column, diag.code) == ("x.qcb", 3, 1, "QCB301")


def test_non_utf8_config_names_the_bad_byte(tmp_path: Path) -> None:
    tmp_path.joinpath("callbacks.conf").write_bytes(b"a.py = done-job-self\nb.py = \xff\n")
    [diag] = load_directory(str(tmp_path)).diagnostics
    assert (diag.code, diag.line, diag.column) == ("QCB001", 2, 8)


def test_missing_directory_and_missing_config_are_warnings(tmp_path: Path) -> None:
    loaded = load_callback_path([f"{tmp_path / 'nope'},{tmp_path}"])
    assert [(x.code, x.severity) for x in loaded.diagnostics] == [
        ("QCB204", "warning"), ("QCB205", "warning")]
    assert loaded.ok and loaded.rules == ()


def test_callback_path_order_positions_and_variables(tmp_path: Path) -> None:
    first = make_dir(tmp_path / "one", "a.py = done-job-self\nb.py = done-job-self\n",
                     {"a.py": "", "b.py": ""})
    make_dir(tmp_path / "two", "c.py = done-job-self\n", {"c.py": ""})
    env = {"SITE": str(tmp_path)}
    loaded = load_callback_path([f"{first}, $SITE/two"], env=env)
    assert [(r.file, r.position) for r in loaded.rules] == [("a.py", 0), ("b.py", 1), ("c.py", 2)]
    assert loaded.rules[2].directory == f"{tmp_path}/two"


def test_default_path_is_qbdir_callback() -> None:
    assert expand_callback_path([], env={"QBDIR": "/opt/qube"}) == ["/opt/qube/callback"]
    assert expand_callback_path(None, env={}) == ["/usr/local/pfx/qube/callback"]
    assert expand_callback_path(["${QBDIR}/cb,,/x"], env={"QBDIR": "/q"}) == ["/q/cb", "/x"]


def test_hostile_names_never_touch_the_file_system(tmp_path: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("")
    d = make_dir(tmp_path / "cb", "../secret.py = done-job-self\n-rf.py = done-job-self\n", {})
    load = load_directory(str(d))
    assert [x.code for x in load.diagnostics] == ["QCB110", "QCB110"]
    assert load.rules == ()
    assert os.path.exists(secret)
