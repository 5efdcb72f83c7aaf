"""The parsing fast paths agree with the Lark grammars, which stay the definition.

Two shortcuts keep `parse_config` fast: a line is split on `=` and the first blank-`#` with
plain string searches instead of a Lark parse of the `line` rule, and a lone
`name-type-context[-extra]` trigger is built by one regex (`parse_simple_event`) instead of a
Lark parse. Both are checked here on text drawn from the grammars and on near misses: whatever a
shortcut accepts, Lark accepts and builds into an equal model with equal warnings.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Token, Tree
from lark.exceptions import LarkError

from qbcallbacks.engine.documents import BlankLine, CommentLine, RuleLine
from qbcallbacks.grammar import config_lark, parse_config, trigger_lark
from qbcallbacks.grammar._trigger_build import Problem, TriggerModel, build_trigger
from qbcallbacks.grammar.config_parser import file_name_problem
from qbcallbacks.grammar.trigger_parser import parse_simple_event

# Characters that sit on the edges of the terminals: separators, operators, blanks, the
# comment and assignment marks, a control character, non-ASCII letters and blanks.
EDGE = "-*()&|#= \tA_z09é\x00\x7f\u00a0\u2028"


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
    text = draw(base)
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


grammar_triggers = from_lark(trigger_lark(), start="trigger")
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
    if slow is not None and slow[0].data == "event":
        assert fast is not None, f"fast path missed the lone event {text!r}"


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
def test_fast_path_builds_what_the_grammar_builds(text: str) -> None:
    check_simple_event(text)


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
    parsed = parse_config(raw + "\n")
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
    assert parsed.document.lines == (model,)
    got = [(d.code, d.column - 1, d.end_column - 1, d.message)
           for d in parsed.diagnostics if d.code == "QCB203"]
    assert got == warnings


safe_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,6}\.(py|pl|qcb)", fullmatch=True)
grammar_lines = st.one_of(
    from_lark(config_lark(), start="line"),
    from_lark(config_lark(), start="line", explicit={"FILENAME": safe_names}),
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
def test_line_split_builds_what_the_line_rule_builds(raw: str) -> None:
    check_line(raw)
