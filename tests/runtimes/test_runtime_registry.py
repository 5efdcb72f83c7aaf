"""Runtimes are found by extension: ours in code, a site's added through entry points."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types
from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path

import pytest

from qbcallbacks.config.load import load_callback_path
from qbcallbacks.errors import Diagnostic, make_diagnostic
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes import api as base
from qbcallbacks.runtimes import registry
from qbcallbacks.runtimes.api import (
    ENTRY_POINT_GROUP,
    Invocation,
    NoSupervisor,
    RunResult,
    Runtime,
    RuntimeNotFound,
    RuntimeSettings,
    child_environment,
    language_extension,
    runtime_for,
)
from qbcallbacks.runtimes.perl import PerlRuntime
from qbcallbacks.runtimes.python import PythonRuntime
from qbcallbacks.runtimes.qcb import QcbRuntime
from qbcallbacks.runtimes.validate import validators


class ShellRuntime(Runtime):
    """A site's `.sh` runtime: argv only, never a shell string built from job data."""

    def validate(self, path: Path) -> list[Diagnostic]:
        done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True,
                              check=False)
        if done.returncode:
            return [make_diagnostic("SITE1", done.stderr.strip(), file=str(path))]
        return []

    def run(self, invocation: Invocation) -> RunResult:
        assert invocation.path is not None
        done = subprocess.run(["sh", str(invocation.path), str(invocation.job_id)],
                              capture_output=True, text=True, timeout=invocation.timeout,
                              check=False, env=child_environment(self.settings))
        return RunResult(status="ok" if done.returncode == 0 else "error",
                         exit_code=done.returncode, output=done.stdout)


@pytest.fixture
def site_runtime(monkeypatch: pytest.MonkeyPatch):
    module = types.ModuleType("site_qb_runtimes")
    module.ShellRuntime = ShellRuntime  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "site_qb_runtimes", module)
    real = importlib.metadata.entry_points

    def patched(**kw: str) -> EntryPoints:
        found = list(real(**kw))
        if kw.get("group") == ENTRY_POINT_GROUP:
            found.append(EntryPoint(name="sh", value="site_qb_runtimes:ShellRuntime",
                                    group=ENTRY_POINT_GROUP))
        return EntryPoints(found)

    monkeypatch.setattr(importlib.metadata, "entry_points", patched)
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


@pytest.fixture
def no_metadata(monkeypatch: pytest.MonkeyPatch):
    """A source tree without installed metadata: no entry point at all."""
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: EntryPoints(()))
    registry.refresh()
    yield
    monkeypatch.undo()
    registry.refresh()


def test_builtins_work_without_entry_point_metadata(no_metadata: None, tmp_path: Path) -> None:
    assert registry.extensions() == ("pl", "py", "qcb")
    assert runtime_for("py") is PythonRuntime
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "b.qcb").write_text("unblock-self\n")
    (tmp_path / "callbacks.conf").write_text("a.py = done-job-self\nb.qcb = done-job-self\n")
    loaded = load_callback_path([str(tmp_path)])
    assert [r.file for r in loaded.rules] == ["a.py", "b.qcb"]
    assert loaded.diagnostics == ()


def test_entry_points_are_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(**kw: str) -> EntryPoints:
        calls.append(kw.get("group", ""))
        return EntryPoints(())

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    registry.refresh()
    try:
        for _ in range(3):
            registry.extensions()
            runtime_for("qcb")
    finally:
        monkeypatch.undo()
        registry.refresh()
    assert calls == [ENTRY_POINT_GROUP]


def test_finding_extensions_imports_no_runtime_module() -> None:
    code = ("import sys\nfrom qbcallbacks.runtimes import registry\n"
            "assert registry.extensions() == ('pl', 'py', 'qcb')\n"
            "from qbcallbacks.cli import check\n"
            "bad = [m for m in sys.modules if m.startswith(('qbcallbacks.runtimes.python', "
            "'qbcallbacks.runtimes.perl', 'qbcallbacks.runtimes.pool', "
            "'qbcallbacks.runtimes.inprocess', 'qbcallbacks.runtimes.workers'))]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_ours_are_registered() -> None:
    assert runtime_for(".py") is PythonRuntime
    assert runtime_for("PL") is PerlRuntime
    assert runtime_for("qcb") is QcbRuntime
    with pytest.raises(RuntimeNotFound, match=r"\.sh"):
        runtime_for("sh")
    assert [language_extension(x) for x in ("python", "perl", "qube", "mail")] == [
        "py", "pl", "qcb", "qcb"]


def test_a_site_runtime_is_found_and_accepted_by_the_loader(site_runtime: None,
                                                            tmp_path: Path) -> None:
    assert runtime_for(".sh") is ShellRuntime
    (tmp_path / "foo.sh").write_text('echo "done $1"\n')
    (tmp_path / "bad.sh").write_text("if then fi (\n")
    (tmp_path / "callbacks.conf").write_text("foo.sh = done-job-self\nbad.sh = done-job-self\n")
    loaded = load_callback_path([str(tmp_path)])
    assert [r.file for r in loaded.rules] == ["foo.sh"]
    assert loaded.rules[0].language == "sh"
    assert [d.code for d in loaded.diagnostics if d.severity == "error"] == ["SITE1"]
    rt = ShellRuntime(MemorySupervisor())
    result = rt.run(Invocation(callback="foo.sh", path=tmp_path / "foo.sh", job_id=3,
                               event=Event(name="done", type="job", job=3)))
    assert (result.status, result.output) == ("ok", "done 3\n")


def test_without_the_site_package_the_loader_rejects_sh(tmp_path: Path) -> None:
    (tmp_path / "foo.sh").write_text("true\n")
    (tmp_path / "callbacks.conf").write_text("foo.sh = done-job-self\n")
    loaded = load_callback_path([str(tmp_path)])
    assert loaded.rules == ()
    assert [d.code for d in loaded.diagnostics] == ["QCB111"]


def test_construction_is_cheap_and_uniform() -> None:
    sup = MemorySupervisor()
    settings = RuntimeSettings(pool_size=3)
    for cls in (PythonRuntime, PerlRuntime, QcbRuntime):
        bare = cls()
        assert bare.supervisor is None
        bound = cls(sup, settings, output_cap=10)
        assert bound.supervisor is sup
        assert (bound.settings.pool_size, bound.settings.output_cap) == (3, 10)
        assert getattr(bound, "worker_pids", ()) == ()  # nothing started
        bound.close()


def test_settings_env_is_explicit() -> None:
    env = child_environment(RuntimeSettings(env={"ONLY": "this"}))
    assert env == {"ONLY": "this"}
    default = child_environment(RuntimeSettings())
    assert default["PATH"] == base.DEFAULT_PATH
    assert set(default) <= {*base.PASSED_ENV, "PATH", "LANG", "LC_ALL", "PYTHONIOENCODING"}


def test_run_needs_a_supervisor() -> None:
    event = Event(name="done", type="job", job=1)
    for cls in (PythonRuntime, PerlRuntime, QcbRuntime):
        with pytest.raises(NoSupervisor):
            cls().run(Invocation(callback="x", code="", job_id=1, event=event))


def test_the_host_never_imports_worker_code() -> None:
    code = ("import sys\nimport qbcallbacks.runtimes.python, qbcallbacks.runtimes.perl\n"
            "from qbcallbacks.runtimes import inprocess\n"
            "bad = [m for m in sys.modules if m.startswith('qbcallbacks.runtimes.workers.')]\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


# -- a site's package installed for real: a dist-info directory on the path --------------------

def install(site: Path, name: str, entry_points: str) -> None:
    """A distribution as pip leaves it: a dist-info directory with its entry points."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.refresh()
    yield
    registry.refresh()


def test_an_installed_site_runtime_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            fresh_registry: None) -> None:
    install(tmp_path, "site_sh", f"[{ENTRY_POINT_GROUP}]\nsh = site_rt:ShellRuntime\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.references()["sh"] == "site_rt:ShellRuntime"
    assert registry.extensions() == ("pl", "py", "qcb", "sh")


def test_a_site_entry_point_for_a_builtin_extension_is_ignored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> None:
    install(tmp_path, "site_py", f"[{ENTRY_POINT_GROUP}]\npy = site_rt:SandboxedPython\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.references()["py"] == registry.BUILTIN_RUNTIMES["py"]
    assert registry.extensions() == ("pl", "py", "qcb")
    assert runtime_for("py") is PythonRuntime


def test_builtin_extensions_are_answered_without_reading_entry_points(
        monkeypatch: pytest.MonkeyPatch, fresh_registry: None, tmp_path: Path) -> None:
    calls: list[str] = []

    def counting(**kw: str) -> EntryPoints:
        calls.append(kw.get("group", ""))
        return EntryPoints(())

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    assert runtime_for("PY") is PythonRuntime
    checkers = validators()
    assert ".pl" in checkers and ".qcb" in checkers
    (tmp_path / "a.py").write_text("print(1)\n")
    (tmp_path / "b.qcb").write_text("unblock-self\n")
    (tmp_path / "callbacks.conf").write_text("a.py = done-job-self\nb.qcb = done-job-self\n")
    loaded = load_callback_path([str(tmp_path)])
    assert (len(loaded.rules), loaded.diagnostics) == (2, ())
    assert calls == []
    assert ".sh" not in checkers  # an extension that is not built in is looked up
    assert calls == [ENTRY_POINT_GROUP]
    assert sorted(checkers) == [".pl", ".py", ".qcb"]
    assert calls == [ENTRY_POINT_GROUP]


def test_the_checkers_serve_a_site_runtime_when_asked(site_runtime: None,
                                                      tmp_path: Path) -> None:
    checkers = validators()
    assert sorted(checkers) == [".pl", ".py", ".qcb", ".sh"]
    assert len(checkers) == 4
    (tmp_path / "bad.sh").write_text("if then fi (\n")
    assert [d.code for d in checkers[".sh"](tmp_path / "bad.sh")] == ["SITE1"]
    for odd in (".SH", "..sh", "sh", ".txt", 3):
        assert odd not in checkers
    with pytest.raises(KeyError):
        checkers[".txt"]
