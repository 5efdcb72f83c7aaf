"""Global callbacks as data: submitted on their own, with no job, firing once per occurrence.

A universal callback (a line of a `callbacks.conf`) has one instance per live job; a
job-specific callback belongs to one job; a global callback belongs to no job. It is submitted
through the API, the service or the command line, kept in the audit trail (so it survives a
restart), and fires once for each event its trigger matches, even while no job is live.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from ._base import Frozen
from .events import check_text
from .languages import JobCallbackLanguage


class GlobalCallback(Frozen):
    """One global callback as the trail keeps it."""

    id: int = Field(ge=1)
    #: The canonical trigger text.
    trigger: str
    language: JobCallbackLanguage
    code: str = ""
    submitted_at: float = 0.0
    #: The Qube instant of the latest time event it fired on, so that a restart does not
    #: fire that instant again; None before its first time firing.
    last_instant: float | None = None

    @field_validator("trigger", "code")
    @classmethod
    def _check_text(cls, value: str) -> str:
        return check_text(value, "text")

    @property
    def name(self) -> str:
        """How its firings are named in the audit trail and `history`."""
        return f"global:{self.id}"
