"""The matcher's build: rules into entries, and their atoms into the index.

What depends only on a rule's trigger (its text, its compiled test, and the refs dicts of the
index its atoms go in, found or made) is worked out once per distinct trigger model; what is
left per rule is its entry and one dict item per atom. At 100k rules that are all different
(the worst case) the per-trigger work is still the larger part, so it is written for the one
shape most rules have: a lone event pattern, placed without building its atom.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from ..model.rules import Rule
from ..model.triggers import AnyOf, EventPattern, TriggerNode, item_key
from .compile import (
    FIELDS,
    Atom,
    MaskTest,
    _any_atom,
    all_of,
    compile_trigger,
    event_text,
    field_atom,
)
from .index import (
    SERIAL_BITS,
    SERIAL_MASK,
    Bucket,
    NameTypeIndex,
    RuleEntry,
    RuleKey,
    rule_bucket,
)

#: The universal-rule index: by type, then name (None for the short global forms).
Index = dict[str, dict[str | None, NameTypeIndex]]
Refs = dict[RuleEntry, int]
#: What one distinct trigger gives each of its rules: its text, test and `simple`, and where
#: its atoms go: one refs dict (bit 1) for a lone atom, else (refs, bits) pairs.
Placed = tuple[str, MaskTest, bool, Refs | None, tuple[tuple[Refs, int], ...]]

_RULE = attrgetter("trigger", "position")
_new = object.__new__


def add_entries(rules: Sequence[Rule], entries: dict[RuleEntry, None], index: Index,
                by_key: dict[RuleKey, list[RuleEntry]] | None, gen: int, serial: int) -> int:
    """Make the entries of `rules` (of generation `gen`, serials from `serial` on) and index
    them; returns the next serial."""
    # By the model's id: parsers hand out one model per distinct trigger, and `rules` holds
    # every model while this runs.
    placed: dict[int, Placed] = {}
    mask = SERIAL_MASK
    for rule, (trigger, position) in zip(rules, map(_RULE, rules), strict=True):
        found = placed.get(id(trigger))
        if found is None:
            found = placed[id(trigger)] = place(trigger, index)
        text, test, simple, refs, places = found
        # `RuleEntry(...)` with its slots filled here: no Python call per rule.
        entry = _new(RuleEntry)
        entry.rule, entry.born, entry.retired = rule, gen, None
        entry.order = (position << SERIAL_BITS) | (serial & mask)
        entry.text, entry.test, entry.simple = text, test, simple
        serial += 1
        entries[entry] = None
        if refs is not None:
            refs[entry] = 1
        else:
            for refs, bit in places:
                refs[entry] = bit
        if by_key is not None:
            by_key.setdefault(entry.key, []).append(entry)
    return serial


def place(trigger: TriggerNode, index: Index) -> Placed:
    """The text, test and index places of one distinct trigger; the places are made empty
    here and filled by the caller with the trigger's rules.

    A lone `self` pattern (most rules) is placed from its fields, without building its atom:
    at worst there is one per rule, and an object less each is a tenth of a rule's build."""
    if type(trigger) is not EventPattern:
        return place_compound(trigger, index)
    name, typ, ctx, extra = FIELDS(trigger)
    if name is None:
        text = typ if extra is None else f"{typ}-{extra}"
    elif extra is None:
        text = f"{name}-{typ}-{ctx}"
    else:
        text = f"{name}-{typ}-{ctx}-{extra}"
    refs = (self_refs(index, name, typ, ctx, extra) if ctx == "self"
            else atom_refs(index, field_atom(name, typ, ctx, extra)))
    return text, _any_atom, True, refs, ()


def place_compound(trigger: TriggerNode, index: Index) -> Placed:
    """`place` for an all-of or any-of. Operands that are all plain patterns (nearly every
    compound a site writes) are placed from their fields, numbered as `compile_trigger`
    numbers them (one bit per distinct pattern, in order); deeper nesting is compiled."""
    operands = trigger.operands  # type: ignore[union-attr]
    for op in operands:
        if type(op) is not EventPattern:
            return place_compiled(trigger, index)
    fields = list(map(FIELDS, operands))
    any_of = type(trigger) is AnyOf
    text = (" || " if any_of else " && ").join([event_text(*key) for key in fields])
    keys = dict.fromkeys(fields)
    places: list[tuple[Refs, int]] = []
    bit = 1
    for key in keys:
        refs = (self_refs(index, *key) if key[2] == "self"
                else atom_refs(index, field_atom(*key)))
        for i, (seen, bits) in enumerate(places):
            if seen is refs:  # `x-work-self` and `x-work-self-*`: one owner, both bits
                places[i] = (refs, bits | bit)
                break
        else:
            places.append((refs, bit))
        bit <<= 1
    if any_of or len(keys) == 1:
        return text, _any_atom, True, None, tuple(places)
    return text, all_of(len(keys)), False, None, tuple(places)


def place_compiled(trigger: TriggerNode, index: Index) -> Placed:
    """`place` for a nested trigger: compiled, then each atom placed with its bit."""
    text, atoms, test, simple = compile_trigger(trigger)
    places: list[tuple[Refs, int]] = []
    bit = 1
    for atom in atoms:
        places.append((atom_refs(index, atom), bit))
        bit <<= 1
    if len({id(refs) for refs, _ in places}) < len(places):
        # Two atoms of one trigger share a refs dict (`x-work-self` and `x-work-self-*`):
        # the rule is one owner there, with both bits.
        merged: dict[int, tuple[Refs, int]] = {}
        for refs, bit in places:
            merged[id(refs)] = (refs, merged[id(refs)][1] | bit if id(refs) in merged else bit)
        places = list(merged.values())
    return text, test, simple, None, tuple(places)


def self_refs(index: Index, name: str | None, typ: str, ctx: str | None,
              extra: str | None) -> Refs:
    """The refs dict of a `self` pattern with these fields, made (empty) if it is not there."""
    if extra == "*":
        extra = None
    elif typ == "subjob":
        extra = item_key(typ, extra)
    by_name = index.get(typ)
    if by_name is None:
        by_name = index[typ] = {}
    nt = by_name.get(name)
    if nt is None:
        nt = by_name[name] = _new(NameTypeIndex)
        nt.any = nt.exact = nt.parent = nt.glob = nt.label = nt.ident = None
    return bucket_refs(nt, extra)


def atom_refs(index: Index, atom: Atom) -> Refs:
    """The refs dict of the index that holds `atom`, made (empty) if it is not there yet."""
    return bucket_refs(rule_bucket(index, atom), atom.extra)


def bucket_refs(bucket: Bucket[RuleEntry], extra: str | None) -> Refs:
    """The refs dict of `bucket` for `extra` (None: any extra), made (empty) if not there."""
    if extra is None:
        refs = bucket.any
        if refs is None:
            refs = bucket.any = {}
        return refs
    exact = bucket.exact
    if exact is None:
        exact = bucket.exact = {}
    refs = exact.get(extra)
    if refs is None:
        refs = exact[extra] = {}
    return refs
