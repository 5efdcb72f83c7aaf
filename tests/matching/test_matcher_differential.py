"""The compiled matcher against the reference evaluator, on generated rules, jobs and events.

Small pools of names, labels, ids and extras make collisions (and so firings, compound
progress, label and parent matches) frequent; the reference loops over everything, so any
index the matcher gets wrong shows up as a different list of firings.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks._records import replace
from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.compile import atom_of, canonical_text, compile_event, compile_trigger
from qbcallbacks.matching.index import Bucket, RuleEntry, bits, rule_bucket
from qbcallbacks.matching.matcher import AttachPolicy, Firing, Matcher
from qbcallbacks.matching.rebuild import adopt, prepare, snapshot
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.model.rules import Rule
from qbcallbacks.model.triggers import AllOf, AnyOf, EventPattern
from support.reference_matcher import ReferenceMatcher, RefFiring

NAMES = ("complete", "failed", "killed", "done", "submit", "removed", "running", "myEvent")
TYPES = ("job", "work", "subjob", "globaltime")
LABELS = ("render", "comp")
IDS = (1, 2, 3, 4, 5)
CONTEXTS = ("self", "parent", *LABELS, *(str(i) for i in IDS))
EXTRAS = ("1", "2")

# The fixed choices are strategies made once: a strategy made inside a composite is made and
# checked again at every draw, which cost more than the matching under test.
_names, _types = st.sampled_from(NAMES), st.sampled_from(TYPES)
_contexts = st.sampled_from(CONTEXTS)
_pattern_extras = st.sampled_from((None, "*", *EXTRAS))
_ends = st.sampled_from(("complete", "failed", "killed", "done"))
_extras = st.sampled_from(EXTRAS)


@st.composite
def full_atoms(draw: st.DrawFn) -> EventPattern:
    typ = draw(_types)
    extra = None if typ == "job" else draw(_pattern_extras)
    return EventPattern(name=draw(_names), type=typ, context=draw(_contexts), extra=extra)


global_atoms = st.one_of(
    st.just(EventPattern(name=None, type="global", context=None)),
    st.builds(lambda t, x: EventPattern(name=None, type=t, context=None, extra=x),
              st.sampled_from(["globaltime", "globalrepeat"]),
              st.sampled_from(["*", *EXTRAS])),
)
atoms = st.one_of(full_atoms(), full_atoms(), full_atoms(), global_atoms)
triggers = st.recursive(
    atoms,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda ops: AllOf(operands=tuple(ops))),
        st.lists(kids, min_size=2, max_size=3).map(lambda ops: AnyOf(operands=tuple(ops))),
    ),
    max_leaves=5,
)
_trigger_lists = st.lists(triggers, min_size=1, max_size=7)
_directories = st.sampled_from(("dirA", "dirB"))


@st.composite
def rule_pools(draw: st.DrawFn) -> list[Rule]:
    trigs = draw(_trigger_lists)
    rules = []
    for i, trig in enumerate(trigs):
        directory = draw(_directories)
        name = draw(st.sampled_from(("a.py", "b.qcb", f"c{i}.pl")))
        rules.append(Rule(directory=directory, file=name, language="python", trigger=trig,
                          line=i + 1, position=i))
    return rules


def renumber(rules: list[Rule]) -> list[Rule]:
    return [replace(r, position=i, line=i + 1) for i, r in enumerate(rules)]


_job_callbacks = st.lists(
    st.builds(lambda t, m: JobCallback(triggers=t.format(), language="qube", maximum=m),
              triggers, st.sampled_from((None, None, 1, 2))),
    max_size=2,
)
_ids, _groups = st.sampled_from(IDS), st.sampled_from((-1, 1, 2))
_job_labels = st.sampled_from(("", *LABELS))
#: A job is never its own parent.
_parents = {i: st.sampled_from((0, *(p for p in IDS if p != i))) for i in IDS}


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    job_id = draw(_ids)
    callbacks = draw(_job_callbacks)
    return Job(id=job_id, pgrp=draw(_groups), label=draw(_job_labels),
               pid=draw(_parents[job_id]), callbacks=tuple(callbacks))


_event_types = st.sampled_from((*TYPES, "global", "globalrepeat"))
_event_jobs = st.sampled_from((0, *IDS, *IDS))
_event_extras = st.sampled_from((None, *EXTRAS, "9"))


@st.composite
def events(draw: st.DrawFn) -> Event:
    typ = draw(_event_types)
    return Event(name=draw(_names), type=typ, job=draw(_event_jobs), extra=draw(_event_extras))


@st.composite
def aimed_events(draw: st.DrawFn, patterns: list[EventPattern], known: list[Job]) -> Event:
    """An event built from an atom of the rules, so that compounds make progress."""
    atom = draw(st.sampled_from(patterns))
    name = atom.name or draw(_names)
    if name == "done":
        name = draw(_ends)
    ctx = atom.context or "self"
    labelled = [j.id for j in known if j.label == ctx]
    parents = [j.pid for j in known if j.pid]
    if ctx.isdigit():
        job = int(ctx)
    elif ctx == "parent" and parents:
        job = draw(st.sampled_from(parents))
    elif labelled:
        job = draw(st.sampled_from(labelled))
    else:
        job = draw(_ids)
    extra = atom.extra if atom.extra not in (None, "*") else draw(_extras)
    return Event(name=name, type=atom.type, job=job, extra=extra)


_job_lists = st.lists(jobs(), max_size=3)
_step_counts = st.integers(1, 30)
_kinds = st.sampled_from(("event",) * 3 + ("aimed",) * 5
                         + ("event+job", "attach", "update", "replace"))
_statuses = st.sampled_from(("running", "complete"))
_events, _jobs = events(), jobs()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Rule], list[tuple[str, object]]]:
    pool = draw(rule_pools())
    patterns = [p for rule in pool for p in rule.trigger.events()]
    jobs_seen = draw(_job_lists)
    patterns += [p for job in jobs_seen for cb in job.callbacks
                 for p in parse_trigger(cb.triggers).events()]
    steps: list[tuple[str, object]] = [("attach", job) for job in jobs_seen]
    for _ in range(draw(_step_counts)):
        kind = draw(_kinds)
        if kind == "event":
            steps.append(("event", (draw(_events), None)))
        elif kind == "aimed":
            steps.append(("event", (draw(aimed_events(patterns, jobs_seen)), None)))
        elif kind == "update" and jobs_seen:
            job = draw(st.sampled_from(jobs_seen))
            steps.append(("attach", job.updated({
                "status": draw(_statuses),
                "label": draw(st.sampled_from((job.label, *LABELS))),
                "pid": draw(st.sampled_from((job.pid, 0, *(i for i in IDS if i != job.id)))),
            })))
        elif kind == "event+job":
            steps.append(("event", (draw(_events), draw(_jobs))))
        elif kind == "attach":
            steps.append(("attach", draw(_jobs)))
        else:
            chosen = draw(st.lists(st.sampled_from(pool), max_size=len(pool) + 1))
            steps.append(("replace", renumber(chosen)))
    return pool, steps


def as_tuples(firings: list[Firing]) -> list[RefFiring]:
    return [RefFiring(f.job, f.callback, f.directory, f.trigger) for f in firings]


@given(scenarios())
def test_compiled_equals_reference(scenario: tuple[list[Rule], list[tuple[str, object]]]) -> None:
    pool, steps = scenario
    compiled, reference = Matcher(pool, attach="live"), ReferenceMatcher(pool)
    for seq, (kind, arg) in enumerate(steps):
        if kind == "attach":
            assert isinstance(arg, Job)
            compiled.attach(arg)
            reference.attach(arg)
        elif kind == "replace":
            assert isinstance(arg, list)
            compiled.replace_rules(arg)
            reference.replace_rules(arg)
            assert compiled.rules == tuple(arg)
        else:
            event, job = arg  # type: ignore[misc]
            got = as_tuples(compiled.observe(event, job))
            want = reference.observe(event, job)
            assert got == want, f"step {seq}: {event.format()}"
        assert compiled.live_jobs == tuple(sorted(reference.jobs))
    assert compiled.pending_states() == len(reference.seen) + len(reference.cb_seen)


def built_beside(matcher: Matcher, rules: list[Rule]) -> None:
    """A reload as the dispatcher does it: built off the matcher, then swapped in."""
    adopt(matcher, prepare(snapshot(matcher), rules, lambda: None))


@pytest.mark.parametrize("policy", ["live", "submission"])
@given(scenario=scenarios())
def test_a_set_built_beside_matches_as_one_replaced_in_place(
        policy: AttachPolicy, scenario: tuple[list[Rule], list[tuple[str, object]]]) -> None:
    pool, steps = scenario
    in_place, beside = Matcher(pool, attach=policy), Matcher(pool, attach=policy)
    for seq, (kind, arg) in enumerate(steps):
        if kind == "attach":
            assert isinstance(arg, Job)
            in_place.attach(arg)
            beside.attach(arg)
        elif kind == "replace":
            assert isinstance(arg, list)
            in_place.replace_rules(arg)
            built_beside(beside, arg)
            assert beside.rules == in_place.rules == tuple(arg)
        else:
            event, job = arg  # type: ignore[misc]
            got = as_tuples(beside.observe(event, job))
            assert got == as_tuples(in_place.observe(event, job)), f"step {seq}"
        assert beside.pending_states() == in_place.pending_states()


def index_shape(matcher: Matcher) -> dict[tuple[object, ...], dict[object, int]]:
    """Every bucket of the universal index as (type, name, part, key, extra) -> {file: bits}."""
    out: dict[tuple[object, ...], dict[object, int]] = {}

    def note(where: tuple[object, ...], bucket: Bucket[RuleEntry] | None) -> None:
        if bucket is None:
            return
        parts: list[tuple[str | None, dict[RuleEntry, int]]] = list((bucket.exact or {}).items())
        if bucket.any is not None:
            parts.append((None, bucket.any))
        for extra, refs in parts:
            assert refs, f"an empty refs dict is kept at {where}"
            out[(*where, extra)] = {(e.rule.position, e.rule.file): bit
                                    for e, bit in refs.items()}

    for typ, by_name in matcher._index.items():
        for name, nt in by_name.items():
            note((typ, name, "self", None), nt)
            note((typ, name, "parent", None), nt.parent)
            note((typ, name, "global", None), nt.glob)
            for label, bucket in (nt.label or {}).items():
                note((typ, name, "label", label), bucket)
            for ident, bucket in (nt.ident or {}).items():
                note((typ, name, "id", ident), bucket)
    return out


def general_shape(pool: list[Rule]) -> dict[tuple[object, ...], dict[object, int]]:
    """The index shape of `pool` put in atom by atom through the general `rule_bucket` path."""
    general = Matcher()
    for i, rule in enumerate(pool):
        compiled = general._cache.for_model(rule.trigger)
        entry = RuleEntry(rule, i, compiled)
        general._entries[entry] = None
        for bit, atom in bits(compiled.atoms):
            rule_bucket(general._index, atom).add(atom.extra, entry, bit)
    return index_shape(general)


@given(pool=rule_pools(), split=st.integers(0, 7))
def test_one_build_indexes_as_rules_added_one_by_one(pool: list[Rule], split: int) -> None:
    """The build's per-trigger placing puts every atom where the general path would: a set
    built at once, one added in two batches and one added rule by rule index alike."""
    at_once = Matcher(pool)
    batches = Matcher(pool[:split])
    batches.add_rules(pool[split:])
    one_by_one = Matcher()
    for rule in pool:
        one_by_one.add_rules([rule])
    want = general_shape(pool)
    assert want  # every rule has at least one atom
    assert index_shape(at_once) == want
    assert index_shape(batches) == want
    assert index_shape(one_by_one) == want
    assert at_once.rules == batches.rules == one_by_one.rules == tuple(pool)


@given(pool=rule_pools(), share=st.integers(1, 3))
def test_rules_sharing_one_trigger_model_are_each_placed(pool: list[Rule], share: int) -> None:
    """The build places each distinct trigger model once and its rules from there: rules that
    share one model object index as rules with models of their own, and fire alike."""
    shared = [replace(r, trigger=pool[i % share].trigger) for i, r in enumerate(pool)]
    own = [replace(r, trigger=copy.deepcopy(pool[i % share].trigger))
           for i, r in enumerate(pool)]
    assert all(a.trigger is not b.trigger for a, b in zip(shared, own, strict=True))
    assert index_shape(Matcher(shared)) == general_shape(own) == index_shape(Matcher(own))


@given(trig=triggers)
def test_the_build_formats_a_trigger_as_the_model_does(trig: EventPattern | AllOf | AnyOf) -> None:
    """The build reads the fields directly; the text must stay the model's canonical one."""
    assert canonical_text(trig) == trig.format()
    assert compile_trigger(trig).text == trig.format()
    for pattern in trig.events():
        alone = compile_event(pattern, {})
        assert alone.text == pattern.format()
        assert alone.atoms == (atom_of(pattern),)
        assert alone.simple


@given(trig=triggers)
def test_the_build_compiles_a_trigger_as_compile_trigger_does(
        trig: EventPattern | AllOf | AnyOf) -> None:
    """The build places flat compounds from their fields, without `compile_trigger`: each
    rule's text, `simple` and mask test must be what the general compiler makes."""
    rule = Rule(directory="d", file="a.py", language="python", trigger=trig, line=1)
    (entry,) = Matcher([rule])._entries
    want = compile_trigger(trig)
    assert (entry.text, entry.simple) == (want.text, want.simple) == (trig.format(), want.simple)
    for mask in range(1 << len(want.atoms)):
        assert entry.test(mask) == want.test(mask), mask
