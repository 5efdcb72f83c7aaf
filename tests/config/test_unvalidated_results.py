"""What `check` builds without pydantic validation equals what validation would build.

A clean `check` builds no pydantic validator at all (building the first one costs more than
the rest of the check; tests/test_layout.py checks that it never happens): the `.qcb` parser,
the directory loader and the default limits construct their models directly. These tests
build the same models through validation and compare them, on text drawn from the grammar
and with odd spellings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis.extra.lark import from_lark
from lark import Token
from pydantic import ValidationError

from qbcallbacks.config.load import DirectoryLoad, load_directory
from qbcallbacks.lang import lark_with_grammar, parse_qcb, qcb_lark
from qbcallbacks.lang.qcb import ParsedQcb
from qbcallbacks.model.documents import BlankLine, CommandLine, CommentLine, QcbProgram
from qbcallbacks.model.limits import Limits, limits_from_env
from qbcallbacks.model.rules import Rule
from support.paths import EXAMPLES


def validated_line(raw: str) -> BlankLine | CommentLine | CommandLine:
    """One `.qcb` line built through the models' validators, from the grammar's tokens."""
    tree = qcb_lark().parse(raw, start="line")
    toks = {c.type: c.value for c in tree.children if isinstance(c, Token)}
    if tree.data == "command_line":
        comment = toks.get("COMMENT")
        return CommandLine(command=toks["COMMAND"], comment=comment)
    if tree.data == "comment_line":
        return CommentLine(text=toks["COMMENT"])
    return BlankLine()


@given(from_lark(lark_with_grammar("qcb.lark"), start="start"))
@example("Unblock-SELF  # trailing blanks \t \n\t# only a comment  \n\n  mail-STATUS\t\n")
def test_parsed_qcb_equals_validated_models(text: str) -> None:
    parsed = parse_qcb(text)
    assert parsed.program is not None
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    if lines[-1] == "":  # the final line ending is not a line
        lines.pop()
    expected = tuple(validated_line(raw) for raw in lines)
    assert parsed.program == QcbProgram(lines=expected)
    for got, want in zip(parsed.program.lines, expected, strict=True):
        assert type(got) is type(want)
        assert got.model_dump() == want.model_dump() and hash(got) == hash(want)
    again = ParsedQcb(**dict(parsed))
    assert again == parsed and again.model_dump() == parsed.model_dump()


def test_a_parse_with_errors_equals_its_validated_copy() -> None:
    parsed = parse_qcb("unblock-self\nbogus-command\n", "x.qcb")
    assert parsed.program is None and parsed.diagnostics
    assert ParsedQcb(**dict(parsed)) == parsed


def test_directory_loads_equal_their_validated_copies(tmp_path: Path) -> None:
    missing = load_directory(str(tmp_path / "absent"))
    (tmp_path / "callbacks.conf").write_text("a.py = done-job-self\nb.qcb = nonsense\n")
    (tmp_path / "a.py").write_text("print(1)\n")
    broken = load_directory(str(tmp_path))
    clean = load_directory(str(EXAMPLES))
    assert clean.rules and broken.diagnostics and missing.diagnostics
    for load in (missing, broken, clean):
        again = DirectoryLoad(**dict(load))
        assert again == load and again.model_dump() == load.model_dump()


def test_default_limits_equal_validated_defaults() -> None:
    built = limits_from_env({})
    assert built == Limits() and built.model_dump() == Limits().model_dump()
    assert built.model_fields_set == Limits().model_fields_set == set()
    assert limits_from_env({"QBCALLBACKS_MAX_DIAGNOSTICS": "7"}).max_diagnostics == 7


def test_rules_built_by_user_code_are_still_validated() -> None:
    """The loader skips validation because the grammar has checked its text; a `Rule` that
    user code builds is checked at that boundary."""
    good = {"kind": "event", "name": "done", "type": "job", "context": "self"}
    rule = Rule(directory="d", file="a.py", language="python", trigger=good, line=1)
    assert rule.trigger_text == "done-job-self"
    for bad in ({**good, "name": "not a name"}, {**good, "type": "jobs"},
                {**good, "context": None}):
        with pytest.raises(ValidationError):
            Rule(directory="d", file="a.py", language="python", trigger=bad, line=1)
    with pytest.raises(ValidationError):
        Rule(directory="d", file="a.py", language="python", trigger=good, line=1, extra=1)
