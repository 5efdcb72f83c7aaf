"""The registry reads the installed entry_points.txt files before asking importlib.metadata,
and must then answer exactly as importlib.metadata would."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbcallbacks.runtimes import registry
from qbcallbacks.runtimes.registry import BUILTIN_RUNTIMES, ENTRY_POINT_GROUP

OURS = "".join(f"{ext} = {ref}\n" for ext, ref in BUILTIN_RUNTIMES.items())


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    registry.refresh()
    yield
    registry.refresh()


def full_lookup() -> dict[str, str]:
    """What the registry answers when it always asks importlib.metadata."""
    found = dict(BUILTIN_RUNTIMES)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name.lower().lstrip(".")] = ep.value
    return found


def install(site: Path, name: str, entry_points: str) -> None:
    """A distribution as pip leaves it: a dist-info directory with its entry points."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_a_site_runtime_on_the_path_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             fresh_registry: None) -> None:
    install(tmp_path, "site_sh", f"[{ENTRY_POINT_GROUP}]\nsh = site_rt:ShellRuntime\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = registry.references()
    assert found["sh"] == "site_rt:ShellRuntime"
    assert found == full_lookup()
    assert registry.extensions() == ("pl", "py", "qcb", "sh")
    ours = list(registry.entry_points(group=ENTRY_POINT_GROUP))
    assert ours == list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def test_a_site_overriding_a_builtin_is_looked_up(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  fresh_registry: None) -> None:
    install(tmp_path, "site_py", f"[{ENTRY_POINT_GROUP}]\npy = site_rt:SandboxedPython\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = list(registry.entry_points(group=ENTRY_POINT_GROUP))
    assert "site_rt:SandboxedPython" in [ep.value for ep in ours]
    assert ours == list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    assert registry.references() == full_lookup()


def test_only_our_own_declarations_need_no_lookup(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  fresh_registry: None) -> None:
    install(tmp_path, "again", f"[console_scripts]\nx = y:z\n\n[{ENTRY_POINT_GROUP}]\n{OURS}")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(registry.entry_points(group=ENTRY_POINT_GROUP)) == []
    assert registry.references() == BUILTIN_RUNTIMES == full_lookup()


@pytest.mark.parametrize(("text", "adds"), [
    (f"[{ENTRY_POINT_GROUP}]\n{OURS}", False),
    (f"# a comment\n[{ENTRY_POINT_GROUP}]\n  .PY = {BUILTIN_RUNTIMES['py']}  \n", False),
    (f"[other]\nsh = a:B\n[{ENTRY_POINT_GROUP}]\npy = {BUILTIN_RUNTIMES['py']}\n", False),
    (f"[{ENTRY_POINT_GROUP}]\n{OURS}sh = a:B\n", True),
    (f"[{ENTRY_POINT_GROUP}]\npy = a:B\n", True),
    (f"[{ENTRY_POINT_GROUP}]\npy = {BUILTIN_RUNTIMES['py']} [extra]\n", True),
    (f"[{ENTRY_POINT_GROUP}]\nnot a pair\n", True),
])
def test_reading_an_entry_points_file(text: str, adds: bool) -> None:
    assert registry._adds_to_builtins(text.encode(), ENTRY_POINT_GROUP) is adds


def test_undecodable_metadata_is_left_to_importlib() -> None:
    assert registry._adds_to_builtins(b"[" + ENTRY_POINT_GROUP.encode() + b"]\n\xff = a:B\n",
                                      ENTRY_POINT_GROUP)


def test_a_zip_on_the_path_is_left_to_importlib(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "site.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("z-1.0.dist-info/entry_points.txt", f"[{ENTRY_POINT_GROUP}]\nzz = z:Z\n")
    monkeypatch.syspath_prepend(str(archive))
    assert registry._may_add_to_builtins(ENTRY_POINT_GROUP)


def test_another_kind_of_finder_is_left_to_importlib(monkeypatch: pytest.MonkeyPatch) -> None:
    class Finder:
        @staticmethod
        def find_distributions(*args: object, **kwargs: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert registry._may_add_to_builtins(ENTRY_POINT_GROUP)
