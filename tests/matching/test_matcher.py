"""The matcher's API beyond what the vectors show: reloads, bad job callbacks, memory bounds."""

from __future__ import annotations

import pytest

from qbcallbacks.errors import QbCallbacksError, TriggerError
from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.compile import compile_trigger
from qbcallbacks.matching.matcher import Firing, Matcher
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.model.rules import Rule


def rule(text: str, position: int, file: str = "a.py", directory: str = "site") -> Rule:
    return Rule(directory=directory, file=file, language="python", trigger=parse_trigger(text),
                line=position + 1, position=position)


def ev(name: str, job: int, typ: str = "job", extra: str | None = None) -> Event:
    return Event(name=name, type=typ, job=job, extra=extra)  # type: ignore[arg-type]


def names(firings: list[Firing]) -> list[tuple[str, int]]:
    return [(f.callback, f.job) for f in firings]


def test_firing_carries_rule_event_and_trigger() -> None:
    r = rule("done-job-self", 0)
    event = ev("killed", 4)
    (firing,) = Matcher([r]).observe(event)
    assert firing.rule == r and firing.event == event and firing.job == 4
    assert (firing.callback, firing.directory, firing.trigger) == ("a.py", "site",
                                                                  "done-job-self")
    assert firing == Firing(job=4, event=event, trigger="done-job-self", rule=r)


def test_replace_rules_keeps_state_of_unchanged_rules() -> None:
    both = rule("complete-job-self && failed-job-self", 0)
    other = rule("complete-job-self && killed-job-self", 1, file="b.py")
    matcher = Matcher([both, other], attach="live")
    assert matcher.observe(ev("complete", 1)) == []
    assert matcher.pending_states() == 2
    # The first rule moves to another line and a new one comes before it: its state stays;
    # the second rule is gone, with its state.
    moved = rule("complete-job-self && failed-job-self", 5)
    matcher.replace_rules([rule("failed-job-self", 0, file="c.py"), moved])
    assert matcher.pending_states() == 1
    assert matcher.rules == (rule("failed-job-self", 0, file="c.py"), moved)
    assert names(matcher.observe(ev("failed", 1))) == [("c.py", 1), ("a.py", 1)]
    assert names(matcher.observe(ev("killed", 1))) == []


def test_add_and_remove_rules() -> None:
    matcher = Matcher([rule("done-job-self", 0)], attach="live")
    matcher.add_rules([rule("done-job-self", 1, file="b.py")])
    assert names(matcher.observe(ev("complete", 1))) == [("a.py", 1), ("b.py", 1)]
    matcher.remove_rules([rule("done-job-self", 7)])  # same directory, file and trigger
    assert names(matcher.observe(ev("complete", 1))) == [("b.py", 1)]
    matcher.remove_rules([rule("done-job-self", 1, file="b.py")])
    assert matcher.observe(ev("complete", 1)) == [] and matcher.rules == ()


def test_bad_job_callback_is_a_trigger_error_and_changes_nothing() -> None:
    matcher = Matcher([rule("done-job-self", 0)])
    good = Job(id=3, label="x")
    matcher.attach(good)
    bad = Job(id=3, label="y", callbacks=(JobCallback(triggers="done-jbo-self",
                                                      language="qube"),))
    with pytest.raises(TriggerError) as info:
        matcher.attach(bad)
    assert isinstance(info.value, QbCallbacksError)
    assert matcher.job(3) == good


def test_job_callback_triggers_are_parsed_once_per_text() -> None:
    matcher = Matcher()
    for job_id in range(1, 200):
        matcher.attach(Job(id=job_id, callbacks=(
            JobCallback(triggers="complete-job-self", language="qube"),
            JobCallback(triggers="failed-job-self  ||  killed-job-self", language="qube"),
        )))
    assert len(matcher._cache) == 2
    assert names(matcher.observe(ev("killed", 5))) == [("job:5#1", 5)]


def test_memory_is_bounded_by_live_jobs() -> None:
    matcher = Matcher([rule("complete-job-self && failed-job-self", 0)])
    for job_id in range(1, 101):
        matcher.observe(ev("complete", job_id))
    assert matcher.pending_states() == 100 and len(matcher.live_jobs) == 100
    for job_id in range(1, 101):
        matcher.observe(ev("removed", job_id))
    assert matcher.pending_states() == 0 and matcher.live_jobs == ()
    assert matcher._pgrp == {} and matcher._children == {}


def test_job_zero_is_no_job() -> None:
    matcher = Matcher([rule("globaltime-*", 0), rule("tick-globaltime-self-*", 1, "b.py")])
    assert matcher.observe(Event(name="tick", type="globaltime", job=0, extra="9")) == []
    matcher.attach(Job(id=2))
    assert names(matcher.observe(Event(name="tick", type="globaltime", job=0, extra="9"))) == [
        ("a.py", 2)]
    assert matcher.live_jobs == (2,)


def test_maximum_unwatches_the_callback() -> None:
    matcher = Matcher()
    matcher.attach(Job(id=1, callbacks=(JobCallback(triggers="done-job-self", language="qube",
                                                    maximum=1),)))
    assert names(matcher.observe(ev("complete", 1))) == [("job:1#0", 1)]
    assert matcher.observe(ev("complete", 1)) == []
    assert not matcher._watch and matcher._watch.keys == {}


@pytest.mark.parametrize(("text", "simple"), [
    ("a-job-self", True),
    ("a-job-self || b-job-self", True),
    ("a-job-self && b-job-self", False),
    ("a-job-self || a-job-self && b-job-self", False),  # b alone is not enough
    ("(a-job-self || b-job-self) && c-job-self", False),
])
def test_simple_triggers_need_no_state(text: str, simple: bool) -> None:
    compiled = compile_trigger(parse_trigger(text))
    assert compiled.simple is simple
    full = (1 << len(compiled.atoms)) - 1
    assert compiled.test(full) and not compiled.test(0)


def test_fast_firing_construction_equals_validated_model() -> None:
    from qbcallbacks.matching.firing import _firing
    from qbcallbacks.model._base import trusted

    # The fast constructor sets pydantic's slots itself: it relies on there being none private.
    assert not Firing.__private_attributes__
    r = rule("done-job-self", 0)
    event = ev("killed", 4)
    callback = JobCallback(triggers="done-job-self", language="qube", maximum=2)
    fields = ("job", "event", "trigger", "rule", "job_callback", "index")
    for values in [(4, event, "done-job-self", r, None, None),
                   (3, event, "done-job-self", None, callback, 1)]:
        fast = _firing(*values)
        kwargs = dict(zip(fields, values, strict=True))
        validated = Firing(**kwargs)
        assert fast == validated == trusted(Firing, **kwargs)
        assert repr(fast) == repr(validated) and hash(fast) == hash(validated)
        assert fast.model_dump() == validated.model_dump()
        assert fast.model_fields_set == trusted(Firing, **kwargs).model_fields_set
        assert (fast.callback, fast.directory) == (validated.callback, validated.directory)
        with pytest.raises(ValueError):
            fast.job = 9  # type: ignore[misc]


def test_rule_order_is_position_then_serial_for_any_position() -> None:
    from qbcallbacks.matching.index import order_of

    pairs = [(p, s) for p in (-(2**40), -3, -1, 0, 1, 7, 2**40) for s in (0, 1, 5, 2**47)]
    assert sorted(pairs, key=lambda ps: order_of(*ps)) == sorted(pairs)


def test_a_reload_after_a_plain_load_keeps_compound_state() -> None:
    """Rules are indexed by identity only when a reload first needs it."""
    first = rule("complete-job-self && failed-job-self", 0)
    matcher = Matcher([first, rule("done-job-self", 1, "b.py")], attach="live")
    assert names(matcher.observe(ev("complete", 1))) == [("b.py", 1)]  # complete is done
    matcher.replace_rules([rule("complete-job-self && failed-job-self", 5),
                           rule("submit-job-self", 6, "c.py")])
    fired = names(matcher.observe(ev("failed", 1)))
    assert fired == [("a.py", 1)]
    matcher.remove_rules([rule("submit-job-self", 6, "c.py")])
    assert matcher.observe(ev("submit", 1)) == []
