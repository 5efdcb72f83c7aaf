"""The hand readers (`lang/_fast_*.py`) agree with the Lark grammars, which stay the definition.

Three keep `parse_config` fast: `_fast_config.read_line` splits a line on `=` and the first
blank-`#` with plain string searches instead of a Lark parse of the `line` rule;
`_fast_trigger.parse_simple_event` builds a lone `name-type-context[-extra]` trigger with one
regex, and `_fast_trigger.parse_compound_trigger` any other trigger of events, operators and
parentheses with a small precedence parser. A fourth, `_fast_qcb.fast_line`, keeps `parse_qcb`
from loading its grammar: a comment or a known command is built with string operations. All
are checked here on text drawn from the grammars (`from_lark`), on models rendered with varied
spellings, on near misses and on hostile text: whatever a reader accepts, Lark accepts and
builds into an equal model with equal warnings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Token, Tree
from lark.exceptions import LarkError

from qbcallbacks._records import to_dict, to_json
from qbcallbacks.lang import config_lark, lark_with_grammar, parse_config, qcb_lark, trigger_lark
from qbcallbacks.lang._fast_qcb import fast_line
from qbcallbacks.lang._fast_rows import event_model, row_model
from qbcallbacks.lang._fast_trigger import (
    MAX_FAST_DEPTH,
    EventRow,
    match_simple_event,
    parse_compound_row,
    parse_compound_trigger,
    parse_simple_event,
    simple_event,
    simple_event_row,
)
from qbcallbacks.lang._trigger_build import Problem, TriggerModel, build_trigger
from qbcallbacks.lang.config import file_name_problem
from qbcallbacks.lang.qcb import _build as build_qcb_line
from qbcallbacks.model.documents import (
    QCB_COMMANDS,
    BlankLine,
    CommandLine,
    CommentLine,
    RuleLine,
)
from support.strategies import triggers

# Characters that sit on the edges of the terminals: separators, operators, blanks, the
# comment and assignment marks, a control character, non-ASCII letters and blanks, and the
# letters whose Unicode case folding meets an ASCII one (Kelvin sign, long s, dotless and dotted i).
EDGE = "-*()&|#= \tA_z09é\x00\x7f\u00a0\u2028\u212a\u017f\u0131\u0130"


def lark_trigger(text: str) -> tuple[Tree[Token], TriggerModel, tuple[Problem, ...]] | None:
    """The grammar alone: the tree, the model and the warnings, or None if it rejects."""
    try:
        tree = trigger_lark().parse(text)
    except LarkError:
        return None
    found: list[Problem] = []
    return tree, build_trigger(tree, found.append), tuple(found)


@st.composite
def near_misses(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    """Grammatical text with a few characters inserted, deleted or replaced."""
    return mutated(draw, draw(base))


def mutated(draw: Callable[[st.SearchStrategy[Any]], Any], text: str) -> str:
    """`text` with a few characters inserted, deleted or replaced."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(EDGE))
        if op == "insert":
            text = text[:at] + char + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + char + text[at + 1:]
    return text


grammar_triggers = from_lark(lark_with_grammar("trigger.lark"), start="trigger")
simple_shapes = st.from_regex(
    r"[A-Za-z_][A-Za-z0-9_]{0,6}-(?i:job|work|subjob|host|time|repeat|global|globaltime"
    r"|globalrepeat|jobs)-[^\s()&|#*=-]{1,5}(-(\*|[^\s()&|*]{1,5}))?", fullmatch=True)
trigger_texts = st.one_of(grammar_triggers, simple_shapes, near_misses(grammar_triggers),
                          near_misses(simple_shapes))


def check_simple_event(text: str) -> None:
    fast = parse_simple_event(text)
    slow = lark_trigger(text)
    if fast is not None:
        assert slow is not None, f"fast path accepted {text!r}, the grammar rejects it"
        _, model, problems = slow
        assert fast == (model, problems)
        # The reader's own canonical text is the model's.
        m = match_simple_event(text)
        assert m is not None and simple_event(m) == (model, problems, model.format())
    if slow is not None and slow[0].data == "event":
        assert fast is not None, f"fast path missed the lone event {text!r}"


@given(trigger_texts)
@example("DONE-JOB-Self")
@example("complete-job-self-3")
@example("Foo-subjob-Parent-007")
def test_simple_event_row_builds_the_model(text: str) -> None:
    """The whole-line reader keeps a lone event as a plain row: the row's model, its text and
    the words the near-miss checks read are the grammar's, one at a time or in a batch."""
    m = match_simple_event(text)
    slow = lark_trigger(text)
    found = None if m is None else simple_event_row(m)
    if found is None:
        return
    assert slow is not None
    _, model, problems = slow
    row, row_problems, canonical = found
    assert type(row) is EventRow
    assert event_model(row) == model and row_model(row) == model
    assert (row.name, row.type, row.context, row.extra) == (
        model.name, model.type, model.context, model.extra)
    assert row_problems == problems and canonical == row.format() == model.format()
    assert list(row.events()) == [row]


def paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    return deepest


def check_compound(text: str, *, must_accept: bool = False) -> None:
    fast = parse_compound_trigger(text)
    slow = lark_trigger(text)
    if fast is not None:
        assert slow is not None, f"compound fast path accepted {text!r}, the grammar rejects it"
        _, model, problems = slow
        assert fast == (model, problems)
        # Same fields in the same order, so dumps and JSON are the same too.
        assert json.dumps(to_json(fast[0])) == json.dumps(to_json(model))
        # The row the whole-line reader keeps: its model, text and words are the grammar's.
        row = parse_compound_row(text)
        assert row is not None and row[1] == problems
        assert row_model(row[0]) == model and row_model(model) is model
        assert row[0].format() == model.format()
        assert [(e.name, e.type, e.context, e.extra) for e in row[0].events()] == [
            (e.name, e.type, e.context, e.extra) for e in model.events()]
    if slow is not None and paren_depth(text) <= MAX_FAST_DEPTH:
        # Every grammatical trigger: full-form events and the short global forms alike.
        assert fast is not None, f"compound fast path missed the trigger {text!r}"
    if must_accept:
        assert fast is not None, f"compound fast path missed the trigger {text!r}"


@given(trigger_texts)
@example("global-job-self")
@example("globaltime-job-self")
@example("GlobalRepeat-job-self-5")
@example("Global-job-self")
@example("a-jobs-self")
@example("a-job-self-5")
@example("a-job-self-*")
@example("a-work-self-*x")
@example("a-work-self-x*")
@example("a-work-self-1-10")
@example("a-work-self-#x=y")
@example("Complete-Job-SELF")
@example("a-job-self\u00a0")
@example("a-time-é-ü")
@example("a-job-self && b-job-self")
@example("a-job-self&&b-job-self||c-work-1-1-10")
@example("(complete-work-ribgen-1 && complete-work-render-1) || complete-work-composite-1")
@example("( a-job-self or b-job-self ) and c-job-self")
@example("( a-job-self or b-job-self )and c-job-self")
@example("a-job-self and(b-job-self)")
@example("a-job-self andb-job-self")
@example("a-job-self || or-job-self")
@example("a-job-self and and-job-self")
@example("a-job-self-x AND b-job-self-* or c-job-self-1-10")
@example("(a-job-self && b-job-self) && (c-job-self && d-job-self-5)")
@example("((a-job-self || b-job-self)) || c-job-self")
@example("global && globaltime-job-self || GLOBALREPEAT-1-5")
@example("global-job-self and Global")
@example("globalx-job-self and global_-job-self")
@example("globaltime and a-job-self")
@example("global-a && b-job-self")
@example("globalé && a-job-self")
@example("a-work-self-*x && b-job-self")
@example("a-work-self-x&&b-job-self")
@example("a-job-self\u00a0&& b-job-self")
@example("a-job-self && b-job-self ")
@example(" a-job-self && b-job-self")
@example("a-job-self & b-job-self")
@example("a-job-self && && b-job-self")
@example("a-job-self && ")
@example("()")
@example("( )")
@example("(a-job-self")
@example("a-job-self)")
@example("(a-job-self) (b-job-self)")
@example("a-job-self\n&& b-job-self")
def test_fast_paths_build_what_the_grammar_builds(text: str) -> None:
    # One test for both shortcuts: drawing text from the grammar is most of the cost.
    check_simple_event(text)
    check_compound(text)


# -- compound triggers ------------------------------------------------------------------------

_BLANK = st.sampled_from(["", "", " ", "\t", "  ", " \t"])
_SOME_BLANK = st.sampled_from([" ", "\t", "  ", "\t "])


@st.composite
def spelled_operator(draw: st.DrawFn, symbol: str) -> str:
    """`&&` or `||` as the grammar lets it be written: symbol with optional blanks around it,
    or the word in any case with at least one blank on each side."""
    if draw(st.booleans()):
        return draw(_BLANK) + symbol + draw(_BLANK)
    word = draw(st.sampled_from(["and", "AND", "And", "aNd"] if symbol == "&&"
                                else ["or", "OR", "Or", "oR"]))
    return draw(_SOME_BLANK) + word + draw(_SOME_BLANK)


_FORMATTED_PIECE = re.compile(r"( && | \|\| |\(|\))")


@st.composite
def respelled_triggers(draw: st.DrawFn) -> tuple[TriggerModel, str]:
    """A model built as data and rendered by `format`, then respelled: operators as words or
    symbols with varied blanks, blanks inside parentheses, redundant parentheses."""
    model = draw(triggers(max_leaves=6))
    out: list[str] = []
    for piece in _FORMATTED_PIECE.split(model.format()):
        if piece == " && ":
            out.append(draw(spelled_operator("&&")))
        elif piece == " || ":
            out.append(draw(spelled_operator("||")))
        elif piece == "(":
            out.append("(" + draw(_BLANK))
        elif piece == ")":
            out.append(draw(_BLANK) + ")")
        else:
            out.append(piece)
    text = "".join(out)
    for _ in range(draw(st.integers(0, 2))):
        text = "(" + draw(_BLANK) + text + draw(_BLANK) + ")"
    return model, text


@given(respelled_triggers(), st.data())
def test_compound_fast_path_reads_every_spelling_of_built_models(
        pair: tuple[TriggerModel, str], data: st.DataObject) -> None:
    model, text = pair
    check_compound(text, must_accept=True)
    fast = parse_compound_trigger(text)
    assert fast is not None and fast[0] == model
    # And a near miss of the same spelling.
    check_compound(mutated(data.draw, text))


def test_compound_fast_path_leaves_deep_nesting_to_the_grammar() -> None:
    inner = "a-job-self && b-job-self"
    for depth in (MAX_FAST_DEPTH, MAX_FAST_DEPTH + 1, 5000):
        text = "(" * depth + inner + ")" * depth
        fast = parse_compound_trigger(text)
        assert (fast is not None) == (depth <= MAX_FAST_DEPTH)
    wide = " || ".join(f"(a-job-{i} && b-work-{i}-x)" for i in range(5000))
    fast = parse_compound_trigger(wide)
    assert fast is not None and len(fast[0].operands) == 5000  # type: ignore[union-attr]


# -- callbacks.conf lines ---------------------------------------------------------------------

def unprefix(tree: Tree[Token]) -> Tree[Token]:
    """callbacks.lark imports trigger.lark, so Lark namespaces its aliases (`trigger__...`)."""
    children = [unprefix(c) if isinstance(c, Tree) else c for c in tree.children]
    return Tree(str(tree.data).removeprefix("trigger__"), children, tree._meta)


def lark_line(raw: str) -> tuple[object, list[tuple[str, int, int, str]]] | None:
    """The `line` rule alone: the line's model and its warnings (code, start, end, message)."""
    try:
        tree = config_lark().parse(raw, start="line")
    except LarkError:
        return None
    if tree.data == "blank_line":
        return BlankLine(), []
    tokens = [c for c in tree.children if isinstance(c, Token)]
    if tree.data == "comment_line":
        comment = next(t for t in tokens if t.type == "COMMENT")
        return CommentLine(text=comment.value.rstrip(" \t")), []
    assert tree.data == "rule_line"
    rule = next(c for c in tree.children if isinstance(c, Tree))
    name = next(c for c in rule.children if isinstance(c, Token) and c.type == "FILENAME")
    trigger = next(c for c in rule.children if isinstance(c, Tree))
    found: list[Problem] = []
    model = build_trigger(unprefix(trigger), found.append)
    comment_tok = next((t for t in tokens if t.type == "COMMENT"), None)
    comment = None if comment_tok is None else comment_tok.value.rstrip(" \t")
    warnings = [(p.code, p.start, p.end, p.message) for p in found]
    return RuleLine(file=name.value, trigger=model, comment=comment), warnings


def check_line(raw: str) -> None:
    slow = lark_line(raw)
    # The line goes second: first in a file, a leading U+FEFF would be the file's byte order
    # mark, which the `start` rule (not `line`) takes and ignores.
    parsed = parse_config("\n" + raw + "\n")
    errors = [d for d in parsed.diagnostics if d.severity == "error"]
    if slow is None:
        assert errors, f"the grammar rejects {raw!r}, parse_config accepted it"
        return
    model, warnings = slow
    if isinstance(model, RuleLine) and file_name_problem(model.file) is not None:
        # Grammatical, but the name is not a safe bare name with a known extension.
        assert {d.code for d in errors} == {file_name_problem(model.file).code}  # type: ignore[union-attr]
        return
    assert errors == [], f"the grammar accepts {raw!r}: {errors}"
    assert parsed.document is not None
    assert parsed.document.lines[1:] == (model,)
    got = [(d.code, d.column - 1, d.end_column - 1, d.message)
           for d in parsed.diagnostics if d.code in ("QCB203", "QCB131", "QCB132", "QCB133")]
    assert got == warnings


#: Hostile lines: any mix of the characters on the terminals' edges, of line and control
#: characters, of non-ASCII blanks and of the byte order mark, with a rule's pieces in between.
HOSTILE = EDGE + "\ufeff\r\x0b\x0c\u3000\u200b\ud7ff\U0001f600.pyqcbl"
hostile_lines = st.lists(st.one_of(st.sampled_from(HOSTILE), st.sampled_from(
    ["a.py", " = ", "done-job-self", "-work-", " && ", " || ", " # c", "(", ")", "global"])),
    max_size=12).map("".join)

safe_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,6}\.(py|pl|qcb)", fullmatch=True)
grammar_lines = st.one_of(
    from_lark(lark_with_grammar("callbacks.lark"), start="line"),
    from_lark(lark_with_grammar("callbacks.lark"), start="line",
              explicit={"FILENAME": safe_names}),
)
line_texts = st.one_of(grammar_lines, near_misses(grammar_lines))


@given(line_texts)
@example("a.py = done-job-self")
@example("  a.py\t=\tdone-job-self   # trailing comment")
@example("a.py = done-job-self# not a comment")
@example("a.py = done-job-self-x #c")
@example("a.py = x-job-self-5")
@example("a b.py = ( a-job-self || b-work-1-* ) and c-host-h")
@example("a.py == done-job-self")
@example("a.py = #comment")
@example("# just a comment  ")
@example("   ")
@example("=a-job-self")
@example("\ufeff=global")
@example("\ufeffa.py = done-job-self")
def test_line_split_builds_what_the_line_rule_builds(raw: str) -> None:
    check_line(raw)


@given(hostile_lines)
def test_line_split_agrees_with_the_grammar_on_hostile_text(raw: str) -> None:
    assume(not raw.endswith("\r"))  # before the line's LF it makes a CRLF line end
    check_line(raw)


def test_a_leading_byte_order_mark_is_the_files_and_is_ignored() -> None:
    """Only the file's first character is a byte order mark (spec/language.md, section 1):
    after it, the first line is read as if it were not there."""
    marked = parse_config("\ufeff=global\n")
    assert [d.code for d in marked.diagnostics] == ["QCB110"]  # missing file name
    assert marked.diagnostics[0].column == 1
    rule = parse_config("\ufeffa.py = done-job-self\n")
    assert rule.ok and [site.rule.file for site in rule.rules] == ["a.py"]
    later = parse_config("a.py = done-job-self\n\ufeffb.py = done-job-self\n")
    assert [site.rule.file for site in later.rules] == ["a.py", "\ufeffb.py"]  # a name's


qcb_grammar_lines = from_lark(lark_with_grammar("qcb.lark"), start="line")
qcb_line_texts = st.one_of(
    qcb_grammar_lines, near_misses(qcb_grammar_lines),
    st.tuples(st.sampled_from(["", " ", "\t "]), st.sampled_from(QCB_COMMANDS),
              st.sampled_from(["", " ", "\t", " # c ", "\t#c\t", "#c", "-x", " x", "\x0b"]))
    .map(lambda t: t[0] + t[1].swapcase() + t[2]).flatmap(
        lambda text: st.one_of(st.just(text), near_misses(st.just(text)))),
)


@given(qcb_line_texts)
@example("Unblock-SELF  # trailing blanks \t ")
@example("\u212aill-self")  # KELVIN SIGN: lower-cases to k, and the grammar takes it
@example("unblock-\u017felf")  # LONG S: the grammar takes it, lower() keeps it
@example("unblock-subjob-self-single")
@example("unblock-subjob-self-singlex")
@example("mail-status#no blank")
@example("  # comment\r")
@example("\ufeffunblock-self")
def test_qcb_fast_lines_are_what_the_grammar_builds(raw: str) -> None:
    assume(raw.strip(" \t"))  # blank lines never reach either
    fast = fast_line(raw)
    if fast is None:
        return
    tree = qcb_lark().parse(raw, start="line")
    slow = build_qcb_line(tree)
    assert type(fast) is type(slow) and fast == slow
    assert to_dict(fast) == to_dict(slow) and repr(fast) == repr(slow)


def test_qcb_fast_path_takes_the_usual_lines() -> None:
    assert fast_line("Unblock-SELF\t# why ") == CommandLine(command="unblock-self",
                                                            comment="# why")
    assert fast_line("  mail-status") == CommandLine(command="mail-status")
    assert fast_line("\t# a comment \t") == CommentLine(text="# a comment")
    for left in ("unblock-selfx", "unblock-self x", "mail-status#x", "unblock-\u017felf"):
        assert fast_line(left) is None
