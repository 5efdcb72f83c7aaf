"""The plain records behave as the frozen pydantic models they replace did: equal and hashed
by their fields (only within one class), immutable, picklable, printed alike, copied with
changes through their checking constructor, and usable as fields of pydantic models."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from qbcallbacks._records import make_many, maker, replace, to_dict, to_json
from qbcallbacks.errors import RecordError
from qbcallbacks.model.documents import BlankLine, CommentLine
from qbcallbacks.model.rules import Rule
from qbcallbacks.model.triggers import AllOf, AnyOf, EventPattern


def pattern(name: str) -> EventPattern:
    return EventPattern(name=name, type="job", context="self")


def test_equality_and_hash_follow_the_fields_within_one_class() -> None:
    a, b = pattern("a"), pattern("b")
    assert a == pattern("a") and hash(a) == hash(pattern("a")) and a != b
    both, either = AllOf(operands=(a, b)), AnyOf(operands=(a, b))
    assert both != either and both.operands == either.operands
    assert a != ("event", "a", "job", "self", None) and {a: 1}[pattern("a")] == 1
    assert BlankLine() == BlankLine() and hash(BlankLine()) == hash(BlankLine())


def test_records_refuse_assignment_and_unknown_or_missing_fields() -> None:
    a = pattern("a")
    with pytest.raises(dataclasses.FrozenInstanceError, match="'name'"):
        a.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.name  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.other = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="missing the keyword argument 'type'"):
        EventPattern(name="a", context="self")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        EventPattern(name="a", type="job", context="self", colour=1)  # type: ignore[call-arg]


def test_pickle_copy_repr_and_dict_forms() -> None:
    rule = Rule(directory="d", file="a.py", language="python",
                trigger=AllOf(operands=(pattern("a"), pattern("b"))), line=3)
    for again in (pickle.loads(pickle.dumps(rule)), copy.copy(rule), copy.deepcopy(rule)):
        assert again == rule and hash(again) == hash(rule) and type(again) is Rule
    assert repr(pattern("a")) == ("EventPattern(kind='event', name='a', type='job', "
                                  "context='self', extra=None)")
    assert [f.name for f in dataclasses.fields(Rule)] == [
        "directory", "file", "language", "trigger", "line", "column", "trigger_column",
        "position"]
    assert to_dict(rule)["trigger"]["operands"][1]["name"] == "b"
    assert to_json(rule)["trigger"]["operands"] == [to_json(pattern("a")), to_json(pattern("b"))]


def test_replace_checks_like_the_constructor() -> None:
    line = CommentLine(text="# a")
    assert replace(line, text="# b  ").text == "# b"
    with pytest.raises(RecordError, match="starts with '#'"):
        replace(line, text="b")


def test_trusted_makers_build_what_the_constructor_builds() -> None:
    make = maker(EventPattern)
    assert make("event", "a", "job", "self", None) == pattern("a")
    built = make_many(EventPattern, 2, [("event", "event"), ("a", "b"), ("job", "job"),
                                        ("self", "self"), (None, None)])
    assert built == [pattern("a"), pattern("b")]


def test_pydantic_models_take_records_as_fields() -> None:
    from qbcallbacks.matching.firing import Firing
    from qbcallbacks.model.events import Event

    rule = Rule(directory="d", file="a.py", language="python",
                trigger=AnyOf(operands=(pattern("a"), pattern("b"))), line=1)
    firing = Firing(job=3, event=Event(name="a", type="job", job=3), trigger="x", rule=rule)
    assert firing.rule is rule
    again = Firing.model_validate_json(firing.model_dump_json())
    assert again == firing and type(again.rule) is Rule and type(again.rule.trigger) is AnyOf
    bad = firing.model_dump()
    bad["rule"]["trigger"] = {"kind": "event", "name": "not a name", "type": "job",
                              "context": "self"}
    with pytest.raises(ValueError, match="not an identifier"):
        Firing.model_validate(bad)
