"""What `check` builds unchecked equals what the records' checking constructors build.

The `.qcb` parser, the directory loader and the default limits construct their records with
the trusted makers, skipping each record's own check (the grammar has done it). These tests
build the same records through the checking constructors and compare them, on text drawn
from the grammar and with odd spellings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis.extra.lark import from_lark
from lark import Token

from qbcallbacks._records import field_names, to_dict
from qbcallbacks.config.load import DirectoryLoad, load_directory
from qbcallbacks.errors import RecordError
from qbcallbacks.lang import lark_with_grammar, parse_qcb, qcb_lark
from qbcallbacks.lang.qcb import ParsedQcb
from qbcallbacks.model.documents import BlankLine, CommandLine, CommentLine, QcbProgram
from qbcallbacks.model.limits import Limits, limits_from_env
from qbcallbacks.model.rules import Rule
from qbcallbacks.model.triggers import AllOf, AnyOf, EventPattern
from support.paths import EXAMPLES


def fields(record: object) -> dict[str, object]:
    """The fields of a record, not copied (as keyword arguments for its constructor)."""
    return {name: getattr(record, name) for name in field_names(type(record))}


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
        assert to_dict(got) == to_dict(want) and hash(got) == hash(want)
    again = ParsedQcb(**fields(parsed))
    assert again == parsed and to_dict(again) == to_dict(parsed)


def test_a_parse_with_errors_equals_its_validated_copy() -> None:
    parsed = parse_qcb("unblock-self\nbogus-command\n", "x.qcb")
    assert parsed.program is None and parsed.diagnostics
    assert ParsedQcb(**fields(parsed)) == parsed


def test_directory_loads_equal_their_validated_copies(tmp_path: Path) -> None:
    missing = load_directory(str(tmp_path / "absent"))
    (tmp_path / "callbacks.conf").write_text("a.py = done-job-self\nb.qcb = nonsense\n")
    (tmp_path / "a.py").write_text("print(1)\n")
    broken = load_directory(str(tmp_path))
    clean = load_directory(str(EXAMPLES))
    assert clean.rules and broken.diagnostics and missing.diagnostics
    for load in (missing, broken, clean):
        again = DirectoryLoad(**fields(load))
        assert again == load and to_dict(again) == to_dict(load)


def test_default_limits_equal_validated_defaults() -> None:
    built = limits_from_env({})
    assert built == Limits() and to_dict(built) == to_dict(Limits())
    assert limits_from_env({"QBCALLBACKS_MAX_DIAGNOSTICS": "7"}).max_diagnostics == 7


def test_rules_built_by_user_code_are_still_checked() -> None:
    """The loader skips the checks because the grammar has checked its text; a `Rule` or a
    trigger that user code builds is checked at that boundary."""
    good = {"name": "Done", "type": "JOB", "context": "Self"}
    rule = Rule(directory="d", file="a.py", language="python", trigger=EventPattern(**good),
                line=1)
    assert rule.trigger_text == "done-job-self"
    for bad, words in (({**good, "name": "not a name"}, "not an identifier"),
                       ({**good, "type": "jobs"}, "not an event type"),
                       ({**good, "context": None}, "both given or both omitted")):
        with pytest.raises(RecordError, match=words):
            EventPattern(**bad)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Rule\.trigger must be EventPattern or AllOf or AnyOf"):
        Rule(directory="d", file="a.py", language="python", trigger=good, line=1)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Rule\.line must be int, not str"):
        Rule(directory="d", file="a.py", language="python", trigger=rule.trigger, line="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'extra'"):
        Rule(directory="d", file="a.py", language="python", trigger=rule.trigger, line=1,
             extra=1)  # type: ignore[call-arg]


def test_compounds_built_by_user_code_are_checked_and_flattened() -> None:
    a, b, c = (EventPattern(name=n, type="job", context="self") for n in "abc")
    assert AllOf(operands=(AllOf(operands=(a, b)), c)).operands == (a, b, c)
    mixed = AllOf(operands=(AnyOf(operands=(a, b)), c))
    assert mixed.format() == "(a-job-self || b-job-self) && c-job-self"
    with pytest.raises(RecordError, match="at least two operands, not 1"):
        AnyOf(operands=(a,))
    with pytest.raises(RecordError, match="operands item must be"):
        AnyOf(operands=(a, "b-job-self"))  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="kind is 'or', not 'and'"):
        AnyOf(operands=(a, b), kind="and")  # type: ignore[arg-type]


def test_document_lines_built_by_user_code_are_checked() -> None:
    from qbcallbacks.model.documents import ConfigDocument, RuleLine

    trigger = EventPattern(name="done", type="job", context="self")
    assert CommentLine(text="# note  \t").text == "# note"
    assert CommandLine(command="Unblock-SELF", comment="# x ").format() == "unblock-self # x"
    for build, words in ((lambda: CommentLine(text="no hash"), "starts with '#'"),
                         (lambda: CommandLine(command="explode"), "not a qcb command"),
                         (lambda: RuleLine(file="a b=", trigger=trigger), "as a file name"),
                         (lambda: ConfigDocument(lines=(CommandLine(command="block-self"),)),
                          "lines item must be")):
        with pytest.raises(RecordError, match=words):
            build()
