"""The built-parser cache is a pickle: it must live only where no one else can write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qbcallbacks.lang import _lark


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _lark.private_cache_dir.cache_clear()
    yield tmp_path
    _lark.private_cache_dir.cache_clear()


def test_the_cache_directory_is_private_to_the_user(cache_home: Path) -> None:
    directory = _lark.private_cache_dir()
    assert directory == cache_home / "qbcallbacks"
    assert directory.stat().st_mode & 0o777 == 0o700


def test_a_directory_others_can_write_is_not_used(cache_home: Path) -> None:
    (cache_home / "qbcallbacks").mkdir(mode=0o700)
    os.chmod(cache_home / "qbcallbacks", 0o777)
    assert _lark.private_cache_dir() is None
    assert _lark._cache_file("qcb.lark") is False


def test_a_link_in_place_of_the_directory_is_not_followed(cache_home: Path,
                                                          tmp_path_factory: pytest.TempPathFactory
                                                          ) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (cache_home / "qbcallbacks").symlink_to(elsewhere)
    assert _lark.private_cache_dir() is None


def test_a_relative_cache_home_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    _lark.private_cache_dir.cache_clear()
    try:
        assert _lark.private_cache_dir() is None
    finally:
        _lark.private_cache_dir.cache_clear()


def test_a_parser_loaded_from_the_cache_parses_like_a_fresh_one(cache_home: Path) -> None:
    text = "unblock-work-self\nmail-status\n"
    fresh = _lark.lark_with_grammar("qcb.lark").parse(text, start="start")
    first = _lark._open("qcb.lark", ["start", "line"])  # builds and writes the cache file
    cached_files = list((cache_home / "qbcallbacks").iterdir())
    assert len(cached_files) == 1 and cached_files[0].name.startswith("qcb.lark-")
    second = _lark._open("qcb.lark", ["start", "line"])  # loads it
    assert first.parse(text, start="start") == fresh == second.parse(text, start="start")
