"""The shape reader (`_fast_shapes.read_shaped`) builds exactly what the grammar builds.

Texts come from the trigger grammar (`from_lark`), from built models respelled, and from near
misses and hostile mixes of the characters on the terminals' edges. Whatever the reader takes
must be a text the grammar accepts without a warning, with an equal model and the model's
canonical text; a text it leaves is the exact readers' (tests/lang/test_parse_fast_path.py).
The events and shapes it keeps between texts must never carry one text's reading into another.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark.exceptions import LarkError

from qbcallbacks.lang import lark_with_grammar, parse_config, trigger_lark
from qbcallbacks.lang._fast_shapes import Atoms, read_shaped, shape_plan
from qbcallbacks.lang._fast_trigger import parse_compound_trigger
from qbcallbacks.lang._trigger_build import Problem, TriggerModel, build_trigger
from qbcallbacks.lang.trigger import clear_cache
from qbcallbacks.model.triggers import TIME_TYPES
from support.strategies import triggers

EDGE = "-*()&|#= \tA_z09é\x00\x7f\r\u00a0\u2028\u212a\u017f\u0131\u0130"
PIECES = ["a-job-self", "Done-JOB-Self", "x-work-L1-*", "b-subjob-p-07", "c-time-self-5",
          "d-job-self-x", "globaltime-job-self", "global", " && ", " || ", " and ", " OR ",
          "(", ")", "( ", " )", "-", "&", "|"]

grammar_triggers = from_lark(lark_with_grammar("trigger.lark"), start="trigger")
hostile = st.lists(st.one_of(st.sampled_from(EDGE), st.sampled_from(PIECES)),
                   max_size=14).map("".join)


def lark_trigger(text: str) -> tuple[TriggerModel, tuple[Problem, ...]] | None:
    try:
        tree = trigger_lark().parse(text)
    except LarkError:
        return None
    found: list[Problem] = []
    return build_trigger(tree, found.append), tuple(found)


def check(text: str, atoms: Atoms) -> None:
    shaped = read_shaped(text, atoms)
    if shaped is None:
        return
    slow = lark_trigger(text)
    assert slow is not None, f"the shape reader accepted {text!r}, the grammar rejects it"
    model, problems = slow
    assert problems == (), f"the shape reader took {text!r}, which draws {problems}"
    assert shaped == (model, model.format())
    # What it takes, the compound reader takes alike.
    assert parse_compound_trigger(text) == (model, ())


@given(st.one_of(grammar_triggers, hostile))
@example("(complete-work-ribgen-1 && complete-work-render-1) || complete-work-composite-1")
@example("( a-job-self or b-job-self ) and c-job-self")
@example("a-job-self andb-job-self")
@example("a-job-self || or-job-self")
@example("globaltime-job-self && a-job-self")
@example("a-job-self-x && b-job-self")
@example("a-job-self\r&& b-job-self")
@example("a-job-Self && b-job-PARENT")
@example("(a-job-self) (b-job-self)")
@example("x-work-L1-*A")  # an event's end touching a character that would join the stand-in's
@example("a-work-self-*-b")
@example("a-work-self-*b-job-self")
@example("a-work-self-* && b-work-self-*x")
@example("a-work-self-*=b")
def test_shape_reader_builds_what_the_grammar_builds(text: str) -> None:
    check(text, {})


@given(triggers(max_leaves=6))
def test_shape_reader_reads_the_canonical_text_of_every_model(model: TriggerModel) -> None:
    text = model.format()
    shaped = read_shaped(text, {})
    slow = lark_trigger(text)
    assert slow is not None
    # A text with a warning is the exact readers' to place, and so is a short global form and
    # a time event with an instant (whose extra the exact readers check).
    if slow[1] == () and all(event.name is not None and (
            event.type not in TIME_TYPES or event.extra in (None, "*"))
            for event in model.events()):
        assert shaped == (model, text)
    else:
        assert shaped is None or shaped == (model, text)


@given(st.lists(st.one_of(grammar_triggers, hostile), min_size=2, max_size=8))
@example(["", "x-work-L1-*A"])
def test_events_kept_between_texts_change_no_reading(texts: list[str]) -> None:
    """One look-up of events and shapes shared by many texts gives, for each, what a fresh
    reader gives: nothing of one text's reading leaks into another."""
    shared: Atoms = {}
    for text in texts:
        alone = read_shaped(text, {})
        assert read_shaped(text, shared) == alone
        check(text, shared)


def test_one_shape_with_different_events_reads_each_text() -> None:
    clear_cache()
    shared: Atoms = {}
    for i in range(50):
        text = f"(a{i}-job-self && b-work-L{i}-{i}) || c-host-h{i}"
        found = read_shaped(text, shared)
        assert found is not None and found[0] == lark_trigger(text)[0]  # type: ignore[index]
    assert shape_plan.cache_info().currsize == 1  # one skeleton, read once
    clear_cache()
    assert shape_plan.cache_info().currsize == 0  # a cold parse reads it anew


def test_hostile_texts_are_refused_or_read_fast() -> None:
    wide = " || ".join(f"(a-job-{i} && b-work-{i}-x)" for i in range(5000))
    found = read_shaped(wide, {})
    assert found is not None and len(found[0].operands) == 5000  # type: ignore[union-attr]
    assert read_shaped("a-job-" + "x" * 200_000, {}) is not None
    assert read_shaped("(" * 5000 + "a-job-self" + ")" * 5000, {}) is None
    assert read_shaped("a-job-self # c\r", {}) is None
    slow = lark_trigger("a-job-é && b-job-ü")
    assert slow is not None
    assert read_shaped("a-job-é && b-job-ü", {}) == (slow[0], "a-job-é && b-job-ü")


def test_a_file_of_distinct_triggers_loads_as_the_grammar_reads_each_line() -> None:
    lines = [f"cb{i}.py = (x{i}-job-self && y-work-self-f{i}) or Done-JOB-L{i}"
             for i in range(200)]
    parsed = parse_config("\n".join(lines) + "\n")
    assert parsed.ok and parsed.document is not None
    for i, rule in enumerate(parsed.document.lines):
        text = lines[i].split(" = ", 1)[1]
        assert rule.trigger == lark_trigger(text)[0]  # type: ignore[union-attr, index]
