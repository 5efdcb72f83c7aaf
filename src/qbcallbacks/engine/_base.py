"""The base of every data model: frozen, strict about unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable data; instances are hashable and safe to share between threads."""

    model_config = ConfigDict(frozen=True, extra="forbid")
