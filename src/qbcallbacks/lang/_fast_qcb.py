"""The hand reader of `.qcb` lines: a comment or a known command, without the grammar.

Loading the qcb grammar costs more than a whole clean `check`, and nearly every line of a real
program is a known command or a comment. The property test in tests/lang/test_parse_fast_path.py
holds this reader to what the grammar builds, on lines drawn from the grammar and hostile ones.
"""

from __future__ import annotations

from ..model.documents import QCB_COMMANDS, QcbLine, make_command_line, make_comment_line

_COMMANDS = frozenset(QCB_COMMANDS)


def fast_line(raw: str) -> QcbLine | None:
    """A non-blank line that is plainly a comment or a known command (in any case, with an
    optional comment), built with string operations; None leaves the line to the grammar,
    which also explains what is wrong. Loading the grammar costs more than a whole clean
    `check`, and a property test holds this to what the grammar builds."""
    rest = raw.lstrip(" \t")
    if "\r" in rest or "\n" in rest:
        return None
    if rest.startswith("#"):
        return make_comment_line("comment", rest.rstrip(" \t"))
    cut = min((i for i in (rest.find(" "), rest.find("\t")) if i >= 0), default=len(rest))
    command = rest[:cut]
    if not command.isascii():  # str.lower folds the Kelvin sign to k; the grammar does not
        return None
    command = command.lower()
    if command not in _COMMANDS:
        return None
    after = rest[cut:].strip(" \t")
    if after and not after.startswith("#"):
        return None
    return make_command_line("command", command, after or None)
