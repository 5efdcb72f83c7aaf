"""Universal callback rules: one per good line of a directory's callbacks.conf."""

from __future__ import annotations

from pathlib import Path

from .._records import check_type, maker, record
from .triggers import AllOf, AnyOf, EventPattern, Trigger, trigger_text

#: `python`, `perl`, `qcb`, or the extension of a site runtime.
Language = str


@record
class Rule:
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

    def __post_init__(self) -> None:
        for name in ("directory", "file", "language"):
            check_type("Rule", name, getattr(self, name), str)
        check_type("Rule", "trigger", self.trigger, EventPattern, AllOf, AnyOf)
        for name in ("line", "column", "trigger_column", "position"):
            check_type("Rule", name, getattr(self, name), int)

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


#: `Rule` from every field in order (directory, file, language, trigger, line, column,
#: trigger_column, position), for a loader whose values are already checked.
make_rule = maker(Rule)


def with_position(rule: Rule, position: int) -> Rule:
    """`rule` renumbered (a reload renumbers every rule after a changed directory)."""
    return make_rule(rule.directory, rule.file, rule.language, rule.trigger, rule.line,
                     rule.column, rule.trigger_column, position)
