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
    from qbcallbacks.cli.serve import _settle_heap

    made = [[i] for i in range(1000)]  # live objects the collector tracks
    try:
        _settle_heap()
        assert gc.get_freeze_count() >= len(made)
        assert gc.get_count()[0] < len(made)
    finally:
        gc.unfreeze()
