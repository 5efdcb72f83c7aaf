"""Owners of time schedules: an instant is raised once for every owner holding its schedule,
an owner that takes the schedule up afterwards is owed it alone, and each owner's callbacks
take each instant once whatever the order of the raise and the taking-up in the stream."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hypothesis import example, given
from hypothesis import strategies as st

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.clock import from_qube
from qbcallbacks.matching.owner import (
    RULES,
    Audience,
    Owner,
    Stamp,
    global_owner,
    job_owner,
    stamp_key,
    stamp_of,
)
from qbcallbacks.matching.schedule import Raised, Scheduler, TimeSpec, job_time_specs, time_specs
from qbcallbacks.model.events import Job, JobCallback


def spec(text: str, owner: Job | None = None) -> TimeSpec:
    (found,) = time_specs([parse_trigger(text)], owner)
    return found


def formats(raised: list[Raised]) -> list[tuple[str, str | None]]:
    return [(r.event.format(), None if r.stamp.owner is None else r.stamp.owner.format())
            for r in raised]


def test_an_owner_taking_up_a_raised_instant_is_owed_it_alone():
    s = Scheduler()
    g100 = spec("globaltime-100")
    s.set_specs({g100})
    [ordinary] = s.raise_due(from_qube(120), [1])
    assert formats([ordinary]) == [("dummy-globaltime-0-100", None)]
    assert s.audience(ordinary.event, ordinary.stamp) == Audience(instant=100)
    assert s.set_owner(global_owner(7), {g100})
    assert s.set_job_specs(5, {g100})
    owed = s.raise_due(from_qube(121), [1])
    assert formats(owed) == [("dummy-globaltime-0-100", "global:7"),
                             ("dummy-globaltime-0-100", "job:5")]
    assert {r.stamp.instant for r in owed} == {100}
    assert [s.audience(r.event, r.stamp) for r in owed] == [
        Audience(only=global_owner(7), instant=100), Audience(only=job_owner(5), instant=100)]
    assert s.raise_due(from_qube(500), [1]) == []


def test_an_instant_raised_before_the_taking_up_but_matched_after_it_is_seen_once():
    """The raise was popped, then the owner took the schedule up, then the raised event was
    matched: the owner sees it there, and what it was owed is dropped."""
    s = Scheduler()
    g100 = spec("globaltime-100")
    s.set_specs({g100})
    [ordinary] = s.raise_due(from_qube(100), [])
    s.set_job_specs(5, {g100})
    assert s.audience(ordinary.event, ordinary.stamp) == Audience(instant=100)  # job 5 takes it
    [owed] = s.raise_due(from_qube(101), [5])
    assert owed.stamp.owner == job_owner(5)
    assert s.audience(owed.event, owed.stamp) is None


def test_an_instant_seen_through_another_raise_is_skipped_for_that_owner_only():
    """A job attached after the rules' instant gets its own late schedule raised for it; the
    rules, which already had that instant, do not take it again on that job."""
    s = Scheduler()
    s.set_specs({spec("dummy-time-self-100")})
    first = s.raise_due(from_qube(100), [3, 4])
    assert [s.audience(r.event, r.stamp) for r in first] == [Audience(instant=100)] * 2
    late = Job(id=9, callbacks=(JobCallback(triggers="dummy-time-self-100", language="qube",
                                            code="kill-self"),))
    s.set_job_specs(9, job_time_specs(late))
    [own] = s.raise_due(from_qube(150), [3, 4, 9])
    assert formats([own]) == [("dummy-time-9-100", None)]
    assert s.audience(own.event, own.stamp) == Audience(skip=frozenset({RULES}), instant=100)


def test_owed_events_reach_the_owner_about_to_be_live():
    """A job's label-context schedule is raised about every live job; what it is owed is
    raised about the job itself too, though the matcher makes it live only after this."""
    s = Scheduler()
    labelled = spec("dummy-time-render-100")
    s.set_specs({labelled})
    s.raise_due(from_qube(100), [1])
    s.set_job_specs(2, {labelled})
    assert formats(s.raise_due(from_qube(101), [1])) == [
        ("dummy-time-1-100", "job:2"), ("dummy-time-2-100", "job:2")]


def test_an_owner_that_left_is_owed_nothing():
    s = Scheduler()
    g100 = spec("globaltime-100")
    s.set_specs({g100})
    s.raise_due(from_qube(100), [])
    s.set_job_specs(5, {g100})
    s.drop_job(5)
    assert s.raise_due(from_qube(101), []) == []


def test_a_repeat_owes_its_latest_instant():
    s = Scheduler()
    rep = spec("globalrepeat-50-100")
    s.set_specs({rep})
    [r] = s.raise_due(from_qube(260), [])
    assert r.stamp.instant == 250
    s.set_owner(global_owner(1), {rep})
    [owed] = s.raise_due(from_qube(261), [])
    assert (owed.stamp.instant, owed.stamp.owner) == (250, global_owner(1))
    assert s.next_due() == from_qube(350)


def test_stamps_round_trip_through_a_journal_key_and_nothing_else_is_one():
    for stamp in (Stamp(100.0, None, 7), Stamp(1e9 + 0.5, job_owner(3), 2**60),
                  Stamp(5.0, RULES, 1), Stamp(5.0, global_owner(12), 0)):
        assert stamp_of(stamp_key(stamp)) == stamp
    for key in (None, 5, ["p", 1, 2, "d"], ["qbcallbacks:time", "*", "x", 1],
                ["qbcallbacks:time", "job:-1", "1.0", 1], ["qbcallbacks:time", "*", "1.0"]):
        assert stamp_of(key) is None


# -- the oracle ---------------------------------------------------------------------------

OWNERS = [RULES, job_owner(1), job_owner(2), global_owner(1), global_owner(2)]
SPECS = [spec(t) for t in ("globaltime-100", "globaltime-130", "globalrepeat-90-40")]


@dataclass
class Model:
    """What the test itself knows: who holds what (each holding a lifetime of its own) and
    which instants each holding took."""

    held: dict[tuple[Owner, TimeSpec], int] = field(default_factory=dict)
    lifetimes: int = 0
    took: dict[tuple[int, TimeSpec], list[float]] = field(default_factory=dict)


def _match(s: Scheduler, model: Model, raised: Raised) -> None:
    audience = s.audience(raised.event, raised.stamp)
    if audience is None:
        return
    for (owner, sp), life in model.held.items():
        stands_for = (sp.name, sp.type, sp.extra) == (raised.event.name, raised.event.type,
                                                       raised.event.extra)
        if stands_for and audience.takes(owner):
            model.took.setdefault((life, sp), []).append(raised.stamp.instant)


ops = st.lists(st.one_of(
    st.tuples(st.just("hold"), st.sampled_from(OWNERS), st.sampled_from(SPECS)),
    st.tuples(st.just("leave"), st.sampled_from(OWNERS), st.sampled_from(SPECS)),
    st.tuples(st.just("clock"), st.integers(0, 60)),
    st.tuples(st.just("match"), st.integers(1, 3)),
), max_size=40)


@given(ops)
@example([("hold", RULES, SPECS[0]), ("clock", 40), ("hold", OWNERS[3], SPECS[0]),
          ("match", 1)])  # raised, taken up, then matched: the owed copy must be dropped
@example([("hold", RULES, SPECS[2]), ("clock", 35), ("match", 1), ("hold", OWNERS[1], SPECS[2]),
          ("clock", 40), ("hold", OWNERS[2], SPECS[2]), ("match", 3)])
def test_each_owner_takes_each_due_instant_once(steps: list[tuple[object, ...]]) -> None:
    s, model, stream = Scheduler(), Model(), deque[Raised]()
    now = 60.0
    for step in steps:
        if step[0] in ("hold", "leave"):
            owner, sp = step[1], step[2]
            assert isinstance(owner, Owner) and isinstance(sp, TimeSpec)
            mine = {sp2 for (o, sp2) in model.held if o == owner}
            if step[0] == "hold" and (owner, sp) not in model.held:
                model.lifetimes += 1
                model.held[owner, sp] = model.lifetimes
                s.set_owner(owner, mine | {sp})
            elif step[0] == "leave" and (owner, sp) in model.held:
                del model.held[owner, sp]
                s.set_owner(owner, mine - {sp})
        elif step[0] == "clock":
            assert isinstance(step[1], int)
            now += step[1]
            stream.extend(s.raise_due(from_qube(now), []))
        else:
            assert isinstance(step[1], int)
            for _ in range(min(step[1], len(stream))):
                _match(s, model, stream.popleft())
    # Drain: raise what is due (what is owed included) and match everything.
    for _ in range(3):
        stream.extend(s.raise_due(from_qube(now), []))
        while stream:
            _match(s, model, stream.popleft())
    for instants in model.took.values():
        assert len(instants) == len(set(instants)), "an instant taken twice"
    for (_, sp), life in model.held.items():
        if now >= sp.start:
            latest = sp.start + (now - sp.start) // sp.interval * sp.interval if sp.interval \
                else sp.start
            assert latest in model.took.get((life, sp), []), "a due instant never taken"
