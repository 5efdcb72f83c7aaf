"""Who a time schedule belongs to, and which owners' callbacks one raised instant is for.

A schedule (`TimeSpec`) may be named by several *owners*: the universal rules (one owner for
the whole rule set), the own callbacks of each live job, and each global callback. An instant
is raised once into the stream and seen there by every owner that held the schedule when it
was matched; an owner that takes the schedule up afterwards is owed that instant, which is
delivered to its callbacks alone (`spec/semantics.md`, "Time events").
"""

from __future__ import annotations

from typing import Literal, NamedTuple

OwnerKind = Literal["rules", "job", "global"]


class Owner(NamedTuple):
    """The universal rules (`RULES`), one job's own callbacks, or one global callback.

    A named tuple rather than a model: it keys the schedule's maps on the matcher thread's
    path, where hashing and building must cost next to nothing."""

    kind: OwnerKind
    id: int = 0

    def format(self) -> str:
        """`rules`, `job:<id>` or `global:<id>`: how the journal keeps it."""
        return "rules" if self.kind == "rules" else f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner `format` wrote, or None for any other text."""
        if text == "rules":
            return RULES
        kind, _, number = text.partition(":")
        if kind in ("job", "global") and number.isdigit() and number.isascii():
            return cls("job" if kind == "job" else "global", int(number))
        return None


RULES = Owner("rules")


def job_owner(job_id: int) -> Owner:
    return Owner("job", job_id)


def global_owner(callback_id: int) -> Owner:
    return Owner("global", callback_id)


class Stamp(NamedTuple):
    """What the engine raised a time event for: the instant it stands for (Qube time), the
    one owner it is owed to (None: every owner of its schedule), and which raise it came
    from (the events one raise makes about several jobs share it; unique across runs)."""

    instant: float
    owner: Owner | None = None
    raise_id: int = 0


class Audience(NamedTuple):
    """Whose callbacks take an engine-raised time event: `only` one owner's, or everyone's
    but the owners in `skip` (those that already saw that instant); `instant` is the one it
    stands for (a repeat's event text does not say which)."""

    only: Owner | None = None
    skip: frozenset[Owner] = frozenset()
    instant: float | None = None

    def takes(self, owner: Owner) -> bool:
        return owner not in self.skip if self.only is None else owner == self.only

    def among(self, kind: OwnerKind) -> tuple[int | None, frozenset[int]] | None:
        """For the owners of one kind (jobs, global callbacks): None when none of them takes
        it, else (the one id that does, or None for all of them; the ids that do not)."""
        if self.only is not None:
            return (self.only.id, frozenset()) if self.only.kind == kind else None
        return None, frozenset(o.id for o in self.skip if o.kind == kind)


#: The tag of an engine-raised time event's stamp in the journal's key slot: a caller's own
#: key never starts with it (`Dispatcher.emit` refuses one that does).
STAMP_TAG = "qbcallbacks:time"


def stamp_key(stamp: Stamp) -> list[str | int]:
    """The journal key that keeps a stamp across a restart."""
    owner = "*" if stamp.owner is None else stamp.owner.format()
    return [STAMP_TAG, owner, repr(stamp.instant), stamp.raise_id]


def stamp_of(key: object) -> Stamp | None:
    """The stamp a journal key holds, or None for any other key."""
    if not (isinstance(key, list) and len(key) == 4 and key[0] == STAMP_TAG):
        return None
    owner_text, instant_text, raise_id = key[1], key[2], key[3]
    if not (isinstance(owner_text, str) and isinstance(instant_text, str)
            and isinstance(raise_id, int)):
        return None
    try:
        instant = float(instant_text)
    except ValueError:
        return None
    if owner_text == "*":
        return Stamp(instant, None, raise_id)
    owner = Owner.parse(owner_text)
    return None if owner is None else Stamp(instant, owner, raise_id)
