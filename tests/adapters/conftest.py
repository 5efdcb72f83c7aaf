"""Fixtures the Flamenco adapter's tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qbcallbacks.adapters.flamenco.state import AdapterState


@pytest.fixture
def state(tmp_path: Path) -> Iterator[AdapterState]:
    """The adapter's stored state, in a fresh file."""
    s = AdapterState(tmp_path / "state.db")
    yield s
    s.close()
