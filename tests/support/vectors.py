"""The one loader of the conformance vectors in spec/vectors, as pytest parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .paths import VECTORS


def vector_cases(pattern: str) -> list[Any]:
    """Every case of the vector files matching `pattern`, with ids `file-stem:case-name`."""
    cases = []
    for path in sorted(VECTORS.glob(pattern)):
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            cases.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return cases


def event_cases() -> list[Any]:
    """The event-stream vectors (`events-*.json`)."""
    return vector_cases("events-*.json")


def time_cases() -> list[Any]:
    """The time-event vectors (`time-*.json`)."""
    return vector_cases("time-*.json")
