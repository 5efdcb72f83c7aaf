"""The usual event request read the short way: almost every line a supervisor sends is an
`event` whose params are `seq`, `event`, `type`, a job id and a plain `extra`. For those,
one pass checks the params, builds the `Event` and writes the text the producer book digests,
where the long way dispatches through the general reader and digests a copy of the params.
Anything else gives None and takes the long way, which judges it. A property test holds the
short way to the long one: same event, same digest, the common shape never left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..model._base import trusted_from
from ..model.events import MAX_ID, Event
from ..model.triggers import EVENT_TYPES, NAME_RE, normalise_name
from .messages import MAX_SEQ

_TYPES = frozenset(EVENT_TYPES)
_quoted = json.encoder.encode_basestring
_blake2b = hashlib.blake2b
#: Names already seen to be identifiers, and the name an event of each gets (a keyword's
#: lower case); bounded, since a peer may send any number of distinct names.
_NAMES: dict[str, str] = {}
_MOST_NAMES = 4096


def quick_event(params: dict[str, Any]) -> tuple[int, Event, str] | None:
    """The `seq`, the event and the content digest of the usual event params (the same as
    `digest` of the params without `seq`, and the same event the stream reader reads);
    None for anything else."""
    seq = params.get("seq")
    name = params.get("event")
    typ = params.get("type")
    job = params.get("job")
    if (type(seq) is not int or type(name) is not str or type(typ) is not str
            or type(job) is not int or not 1 <= seq <= MAX_SEQ or not 0 <= job <= MAX_ID
            or typ not in _TYPES):
        return None
    given = "extra" in params
    if len(params) != (5 if given else 4):
        return None
    norm = _NAMES.get(name)
    if norm is None:
        if not NAME_RE.match(name):
            return None
        norm = normalise_name(name)
        if len(_NAMES) < _MOST_NAMES:
            _NAMES[name] = norm
    extra = params.get("extra")
    kind = type(extra)
    if extra is None:
        text, written = None, "null"
    elif kind is str:
        if not extra.isascii():
            return None
        text, written = extra, _quoted(extra)
    elif kind is int:
        text = written = int.__repr__(extra)
    else:
        return None
    # The keys in sorted order, compact, as `producers.flat_text` writes them.
    flat = (f'{{"event":"{name}","extra":{written},"job":{job},"type":"{typ}"}}' if given
            else f'{{"event":"{name}","job":{job},"type":"{typ}"}}')
    value = _blake2b(flat.encode(), digest_size=12).hexdigest()
    event = trusted_from(Event, {"name": norm, "type": typ, "job": job, "extra": text})
    return seq, event, value
