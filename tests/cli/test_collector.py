"""The CLI pauses the cyclic collector only while it imports, never while a command runs."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from qbcallbacks.cli import _targets, main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "callback"


def test_the_collector_runs_during_and_after_a_command(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[bool] = []
    real = _targets.Checker.__init__

    def recording(self: _targets.Checker, **kw: bool) -> None:
        seen.append(gc.isenabled())
        real(self, **kw)

    monkeypatch.setattr(_targets.Checker, "__init__", recording)
    assert gc.isenabled()
    assert main(["check", str(EXAMPLES)]) == 0
    assert seen == [True]
    assert gc.isenabled()
    assert main(["check", "--no-such-option"]) == 2
    assert main(["no-such-command"]) == 2
    assert gc.isenabled()
    capsys.readouterr()


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        assert main(["check", str(EXAMPLES)]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_serve_moves_what_its_start_up_made_out_of_the_collectors_reach() -> None:
    from qbcallbacks.cli.serve import YOUNG_THRESHOLD, _settle_heap

    made = [[i] for i in range(1000)]  # live objects the collector tracks
    before = gc.get_threshold()
    try:
        _settle_heap()
        assert gc.get_freeze_count() >= len(made)
        assert gc.get_count()[0] < len(made)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert before[0] < YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_serve_leaves_a_collector_switched_off_by_its_threshold_off() -> None:
    from qbcallbacks.cli.serve import _settle_heap

    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        _settle_heap()
        assert gc.get_threshold()[0] == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
