"""A new rule set built beside the one in force, so that a reload costs the matcher thread
only a swap of references.

`prepare` runs on a loader thread: it compiles and indexes the new rules into a scratch
matcher, pairs each with the rule of the same identity in force (the pair keeps its
generation and its compound states), and calls `check` between chunks of `CHUNK` rules, so a
deadline can stop it there and the other threads get the interpreter in between. It reads
only a `Snapshot` taken under the owner's lock. `adopt` runs on the matcher thread: its cost
is the compound states live jobs hold (and the rules taken out, when live jobs keep them),
never the size of the rule set. While a build runs, the old and the new set both live: the
peak is about twice one set, and the old one is freed by the swap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.rules import Rule
from .index import RuleEntry, RuleKey, rule_bucket
from .index import bits as _bits
from .matcher import Matcher

#: Rules handled between two calls of `check`: a few milliseconds of work.
CHUNK = 2_000

Check = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a build needs of the matcher in force, copied in one step under its lock."""

    entries: tuple[RuleEntry, ...]
    retired: tuple[RuleEntry, ...]
    gen: int
    serial: int
    policy: str
    jobs_live: bool


@dataclass(slots=True)
class Prepared:
    """A built rule set waiting to be put in force by `adopt`."""

    rules: tuple[Rule, ...]
    scratch: Matcher
    #: Each compound rule in force with a successor, and that successor (its states move).
    renamed: dict[RuleEntry, RuleEntry]
    #: Rules in force with no successor.
    gone: set[RuleEntry]
    #: Whether `gone` and the snapshot's retired rules were indexed for the live jobs.
    kept_old: bool
    retired: tuple[RuleEntry, ...]
    gen: int


def snapshot(matcher: Matcher) -> Snapshot:
    """Copy what `prepare` reads (C-level copies: short, whatever the size)."""
    return Snapshot(tuple(matcher._entries), tuple(matcher._retired), matcher._gen,
                    matcher._serial, matcher.attach_policy, bool(matcher._live))


def prepare(old: Snapshot, rules: Sequence[Rule], check: Check) -> Prepared:
    """Build `rules` beside the set of `old`; `check` may raise to abandon the build."""
    gen = old.gen + 1
    scratch = Matcher(attach="live" if old.policy == "live" else "submission")
    scratch._gen, scratch._serial = gen, old.serial
    rules = tuple(rules)
    for start in range(0, len(rules), CHUNK):
        scratch._add(rules[start:start + CHUNK])
        check()
    pool: dict[RuleKey, list[RuleEntry]] = {}
    for start in range(0, len(old.entries), CHUNK):
        for entry in old.entries[start:start + CHUNK]:
            pool.setdefault(entry.key, []).append(entry)
        check()
    renamed: dict[RuleEntry, RuleEntry] = {}
    news = tuple(scratch._entries)
    for start in range(0, len(news), CHUNK):
        for entry in news[start:start + CHUNK]:
            same = pool.get(entry.key)
            if same:
                before = same.pop(0)
                entry.born = before.born
                if not before.simple:
                    renamed[before] = entry
        check()
    gone = {e for same in pool.values() for e in same}
    kept_old = old.policy == "submission" and old.jobs_live
    retired = old.retired if kept_old else ()
    if kept_old:
        _index(scratch, (*gone, *retired), check)
    return Prepared(rules, scratch, renamed, gone, kept_old, retired, gen)


def _index(scratch: Matcher, entries: Sequence[RuleEntry], check: Check | None) -> None:
    """Give rules taken out of the set their atoms in `scratch`: older jobs still have them."""
    for start in range(0, len(entries), CHUNK):
        for entry in entries[start:start + CHUNK]:
            for bit, atom in _bits(scratch._cache.for_model(entry.rule.trigger).atoms):
                rule_bucket(scratch._index, atom).add(atom.extra, entry, bit)
        if check is not None:
            check()


def adopt(m: Matcher, p: Prepared) -> None:
    """Put a prepared set in force (matcher thread). A set prepared before another change of
    the rules is rebuilt here the slow way rather than put in force wrong."""
    if m._gen + 1 != p.gen:
        m.replace_rules(p.rules)
        return
    s = p.scratch
    keep = m.attach_policy == "submission" and bool(m._live)
    if keep and not p.kept_old:  # jobs came while it was built: they keep the old rules
        _index(s, (*p.gone, *m._retired), None)
    retired = set(m._retired) if keep or p.kept_old else set()
    if p.kept_old:
        retired |= set(p.retired) & m._retired  # not those forgotten meanwhile
        forgotten = [e for e in p.retired if e not in m._retired]
        s._forget(set(forgotten))
    if keep or p.kept_old:
        for entry in p.gone:
            entry.retired = p.gen
        retired |= p.gone
    for live in m._live.values():
        if live.state:
            live.state = {p.renamed.get(e, e): mask for e, mask in live.state.items()
                          if e in p.renamed or e in retired}
    text_cache = m._cache._by_text
    m._cache = s._cache
    m._cache._by_text.update(text_cache)
    m._index, m._entries, m._by_key = s._index, s._entries, s._by_key
    m._serial, m._gen, m._retired = s._serial, p.gen, retired
    m._gated = m.attach_policy == "submission" and bool(m._live)
    if retired or m._gated:
        m._collect()
