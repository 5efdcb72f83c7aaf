"""The static Perl check keeps its findings per script content in the private cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qbcallbacks.lang import _lark
from qbcallbacks.runtimes import validate

pytestmark = pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _lark.private_cache_dir.cache_clear()
    yield tmp_path / "cache" / "qbcallbacks"
    _lark.private_cache_dir.cache_clear()


def test_an_unchanged_script_is_answered_from_the_cache(cache_home: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "broken.pl"
    script.write_text("sub f {\n  print 1;\n")
    first = validate.perl_syntax(script)
    if not first:
        pytest.skip("PPI is not installed: the static check says nothing")
    assert len(list(cache_home.glob("perl-syntax-*.json"))) == 1

    def no_perl(*args: object, **kwargs: object) -> object:
        raise AssertionError("perl was started for an unchanged script")

    monkeypatch.setattr(subprocess, "run", no_perl)
    assert validate.perl_syntax(script) == first


def test_a_changed_script_is_checked_again(cache_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.pl"
    script.write_text("sub f {\n")
    broken = validate.perl_syntax(script)
    if not broken:
        pytest.skip("PPI is not installed: the static check says nothing")
    script.write_text("sub f { 1 }\n")
    assert validate.perl_syntax(script) == []
    assert len(list(cache_home.glob("perl-syntax-*.json"))) == 2


def test_a_failed_check_is_not_kept(cache_home: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "s.pl"
    script.write_text("sub f { 1 }\n")

    def timed_out(*args: object, **kwargs: object) -> object:
        raise subprocess.TimeoutExpired("perl", 20)

    monkeypatch.setattr(subprocess, "run", timed_out)
    assert [d.code for d in validate.perl_syntax(script)] == ["QCB402"]
    assert not cache_home.exists() or not list(cache_home.glob("perl-syntax-*.json"))


def test_a_corrupt_cache_entry_means_checking_again(cache_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.pl"
    script.write_text("sub f {\n")
    first = validate.perl_syntax(script)
    if not first:
        pytest.skip("PPI is not installed: the static check says nothing")
    (entry,) = cache_home.glob("perl-syntax-*.json")
    entry.write_text("{not json")
    assert validate.perl_syntax(script) == first
