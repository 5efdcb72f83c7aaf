"""Universal callback rules: one per good line of a directory's callbacks.conf."""

from __future__ import annotations

from pathlib import Path

from ._base import Frozen
from .triggers import Trigger, trigger_text

#: `python`, `perl`, `qcb`, or the extension of a site runtime.
Language = str


class Rule(Frozen):
    """`file = trigger` from line `line` of `<directory>/callbacks.conf`.

    `directory` is the directory as the callback path gave it; `position` orders rules across
    the whole path (directory order, then line order), which is the order firings run in.
    """

    directory: str
    file: str
    language: Language
    trigger: Trigger
    line: int
    column: int = 1
    trigger_column: int = 1
    position: int = 0

    @property
    def path(self) -> Path:
        return Path(self.directory) / self.file

    def format(self) -> str:
        """The rule as a canonical callbacks.conf line."""
        return f"{self.file} = {self.trigger_text}"

    @property
    def trigger_text(self) -> str:
        """The canonical text of the trigger."""
        return trigger_text(self.trigger)
