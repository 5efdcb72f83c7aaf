"""Every saved fuzz finding and every seed, replayed through the fuzz targets' own checks.

A finding becomes a regression test by saving its input under fuzz/regressions/<target>/
(see fuzz/README.md); this module picks it up with no other change.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from support.paths import ROOT

FUZZ = ROOT / "fuzz"


def _load_checks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_checks", FUZZ / "checks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKS: dict[str, Callable[[bytes], None]] = _load_checks().CHECKS


def _inputs(folder: str) -> list[tuple[str, Path]]:
    return sorted((target.name, path) for target in (FUZZ / folder).iterdir()
                  if target.is_dir() for path in target.iterdir())


@pytest.mark.parametrize(("target", "path"), _inputs("regressions"),
                         ids=lambda v: v.name if isinstance(v, Path) else str(v))
def test_saved_finding_passes_its_check(target: str, path: Path) -> None:
    CHECKS[target](path.read_bytes())


def test_every_seed_passes_its_check() -> None:
    seeds = _inputs("corpus")
    assert {target for target, _ in seeds} == set(CHECKS)
    for target, path in seeds:
        CHECKS[target](path.read_bytes())


def test_the_differential_check_catches_a_planted_disagreement(
        monkeypatch: pytest.MonkeyPatch) -> None:
    checks = _load_checks()
    wrong = checks.parse_simple_event("b-job-self")
    monkeypatch.setattr(checks, "parse_simple_event", lambda text: wrong)
    with pytest.raises(AssertionError, match="disagree"):
        checks.check_differential(b"a-job-self")


def test_event_lines_json_cannot_read_are_bad_lines() -> None:
    from qbcallbacks.stream import read_events
    lines = [b'{"event":"done","type":"job","job":' + b"9" * 5000 + b"}\n", b"[" * 100_000]
    steps = list(read_events(lines))
    assert [type(s).__name__ for s in steps] == ["BadLine", "BadLine"]
