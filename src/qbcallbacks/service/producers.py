"""Exactly-once acceptance per producer (`spec/service.md`, "Producers").

Every event source has a name and an epoch; within an epoch its `seq` orders acceptance. The
book says, for one event, whether it is new (journal it), a duplicate of one already taken
(same seq and the same content), a conflict (same seq, other content; an epoch that was
replaced), or out of order (a retriable refusal of an earlier seq is still owed). It is kept
in memory under the service's lock; the journal line of every accepted event carries the
producer, epoch, seq and content digest, and `audit.producers` checkpoints the state in the
trail, so a restart reads the checkpoint and then the journal after it.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..audit.journal import JournalEntry, Position
from ..audit.producers import ProducerRow
from ..stream import EVENT_KEYS

#: Keys `flat_text` writes unquoted by json (plain ASCII words).
_PLAIN_KEYS = EVENT_KEYS
_quoted = json.encoder.encode_basestring

#: How many of a producer's latest seqs keep their digest (re-sends of older ones are refused
#: as too old to compare; a supervisor resumes from `last_seq` + 1 and never needs them).
WINDOW = 4096
#: The most producers one service keeps state for (each costs its window).
MAX_PRODUCERS = 256
#: The longest producer name.
MAX_NAME = 200


def digest(line: dict[str, Any]) -> str:
    """The content of an event (its params without `seq`), as a short stable digest."""
    text = flat_text(line)
    if text is None:
        text = json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def flat_text(line: dict[str, Any]) -> str | None:
    """The text `digest` hashes, written directly for a line of the usual keys whose values
    are strings, whole numbers or null (the job given by id), which is most of them; None
    for any other line. The same text as `json.dumps` with sorted keys, compact separators
    and `ensure_ascii=False`, at a third of its cost (a property test compares them)."""
    out = "{"
    for key in sorted(line):
        if key not in _PLAIN_KEYS:
            return None
        value = line[key]
        kind = type(value)
        if kind is str:
            out += f'"{key}":{_quoted(value)},'
        elif kind is int:
            out += f'"{key}":{int.__repr__(value)},'
        elif value is None:
            out += f'"{key}":null,'
        else:
            return None
    return out[:-1] + "}" if len(out) > 1 else "{}"


@dataclass
class Producer:
    """What is known of one producer: its newest epoch and that epoch's latest seqs."""

    epoch: int
    last_seq: int = 0
    seen: OrderedDict[int, str] = field(default_factory=OrderedDict)
    #: The seq a retriable refusal left owed: later ones are refused until it comes again.
    owed: int | None = None

    def keep(self, seq: int, value: str) -> None:
        self.seen[seq] = value
        self.last_seq = max(self.last_seq, seq)
        while len(self.seen) > WINDOW:
            self.seen.popitem(last=False)


class Verdict:
    """What to do with one event."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    OWED = "owed"


class ProducerBook:
    """Every producer's state; not thread-safe (the service holds its lock around it)."""

    def __init__(self) -> None:
        self.producers: dict[str, Producer] = {}
        #: Accepted since the last checkpoint (what the next one writes).
        self.unsaved: list[ProducerRow] = []

    def last_seq(self, name: str, epoch: int) -> int:
        found = self.producers.get(name)
        return found.last_seq if found is not None and found.epoch == epoch else 0

    def epoch(self, name: str) -> int | None:
        found = self.producers.get(name)
        return None if found is None else found.epoch

    def admit(self, name: str, epoch: int) -> str | None:
        """Why `name` at `epoch` may not send (None: it may)."""
        found = self.producers.get(name)
        if found is not None and epoch < found.epoch:
            return (f"producer {name!r} is at epoch {found.epoch}; epoch {epoch} was replaced "
                    "and sends nothing more")
        if found is None and len(self.producers) >= MAX_PRODUCERS:
            return f"this service keeps at most {MAX_PRODUCERS} producers"
        return None

    def judge(self, name: str, epoch: int, seq: int, value: str) -> tuple[str, str]:
        """The verdict on one event, and the words for a refusal."""
        why = self.admit(name, epoch)
        if why is not None:
            return Verdict.CONFLICT, why
        found = self.producers.get(name)
        state = found if found is not None and found.epoch == epoch else None
        if state is None:
            return Verdict.NEW, ""
        if seq <= state.last_seq:
            had = state.seen.get(seq)
            if had == value:
                return Verdict.DUPLICATE, ""
            where = f"producer {name!r} epoch {epoch}"
            if had is not None:
                return Verdict.CONFLICT, (f"seq {seq} of {where} was taken with other content; "
                                          "a seq names one event")
            oldest = next(iter(state.seen), state.last_seq)
            if seq < oldest and len(state.seen) >= WINDOW:
                return Verdict.CONFLICT, (f"seq {seq} of {where} is older than the last "
                                          f"{WINDOW} taken and cannot be compared; its "
                                          f"last_seq is {state.last_seq}")
            return Verdict.CONFLICT, (f"seq {seq} of {where} was skipped (a gap below "
                                      f"last_seq {state.last_seq}) and cannot be taken now")
        if state.owed is not None and seq > state.owed:
            return Verdict.OWED, (f"producer {name!r} epoch {epoch}: seq {seq} not taken; "
                                  f"re-send from seq {state.owed}")
        return Verdict.NEW, ""

    def taken(self, name: str, epoch: int, seq: int, value: str) -> None:
        """`seq` was journaled."""
        state = self._state(name, epoch)
        state.keep(seq, value)
        if state.owed is not None and seq >= state.owed:
            state.owed = None
        self.unsaved.append(ProducerRow(name, epoch, seq, value))

    def refused(self, name: str, epoch: int, seq: int) -> None:
        """`seq` was refused for a reason that asks for it again later."""
        state = self._state(name, epoch)
        state.owed = seq if state.owed is None else min(state.owed, seq)

    def owed(self, name: str, epoch: int) -> int | None:
        found = self.producers.get(name)
        return found.owed if found is not None and found.epoch == epoch else None

    def _state(self, name: str, epoch: int) -> Producer:
        found = self.producers.get(name)
        if found is None or found.epoch < epoch:
            found = self.producers[name] = Producer(epoch)
        return found

    # -- restart ---------------------------------------------------------------------------

    def restore(self, rows: Iterable[ProducerRow]) -> None:
        """Take a checkpoint's rows (in producer, epoch, seq order)."""
        for row in rows:
            self._state(row.producer, row.epoch).keep(row.seq, row.digest)

    def replay(self, entries: Iterable[JournalEntry]) -> Position | None:
        """Take the producer keys of journal lines written after the checkpoint; the position
        after the last one (None: there was none)."""
        end = None
        for entry in entries:
            key = entry.key
            if isinstance(key, list) and len(key) == 4:
                name, epoch, seq, value = key
                if isinstance(name, str) and isinstance(epoch, int) and isinstance(seq, int):
                    self.taken(name, epoch, seq, str(value))
                    end = entry.end
        return end

    def summary(self) -> dict[str, dict[str, int]]:
        return {name: {"epoch": p.epoch, "last_seq": p.last_seq}
                for name, p in sorted(self.producers.items())}
