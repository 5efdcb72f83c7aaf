"""The language conformance vectors in spec/vectors/language-*.json, run as tests."""

from __future__ import annotations

from typing import Any

import pytest

from qbcallbacks import TriggerError, parse_config, parse_qcb
from qbcallbacks._records import to_json
from qbcallbacks.errors import Diagnostic
from qbcallbacks.lang.trigger import parse_trigger_with_warnings
from support.vectors import vector_cases


def positions(diags: tuple[Diagnostic, ...] | list[Diagnostic]) -> list[dict[str, object]]:
    keys = ("line", "column", "end_column", "severity", "code")
    return [{k: d.to_json()[k] for k in keys} for d in diags]


@pytest.mark.parametrize("case", vector_cases("language-triggers.json"))
def test_trigger_vector(case: dict[str, Any]) -> None:
    errors = [d for d in case.get("diagnostics", []) if d["severity"] == "error"]
    if errors:
        with pytest.raises(TriggerError) as info:
            parse_trigger_with_warnings(case["input"])
        assert positions(info.value.diagnostics) == case["diagnostics"]
        return
    model, warnings = parse_trigger_with_warnings(case["input"])
    assert model.format() == case["canonical"]
    assert positions(warnings) == case.get("diagnostics", [])
    if "model" in case:
        assert to_json(model) == case["model"]


@pytest.mark.parametrize("case", vector_cases("language-config.json"))
def test_config_vector(case: dict[str, Any]) -> None:
    parsed = parse_config(case["input"], "callbacks.conf")
    assert positions(parsed.diagnostics) == case["diagnostics"]
    assert [[s.line, s.rule.file, s.rule.trigger.format()] for s in parsed.rules] == case["rules"]
    rendered = None if parsed.document is None else parsed.document.format()
    assert rendered == case["canonical"]


@pytest.mark.parametrize("case", vector_cases("language-qcb.json"))
def test_qcb_vector(case: dict[str, Any]) -> None:
    parsed = parse_qcb(case["input"], "x.qcb")
    assert positions(parsed.diagnostics) == case["diagnostics"]
    rendered = None if parsed.program is None else parsed.program.format()
    assert rendered == case["canonical"]
    if parsed.program is not None:
        assert list(parsed.program.commands) == case["commands"]
