from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from qbcallbacks.audit.journal import Journal, JournalKey, Position, _head
from qbcallbacks.model.events import Event


def ev(job: int) -> Event:
    return Event(name="complete", type="work", job=job, extra="5")


def test_appends_read_back_in_order_from_a_position(tmp_path):
    j = Journal(tmp_path / "j")
    ends = [j.append(ev(i), f'{{"id": {i}}}' if i % 2 else None) for i in range(1, 6)]
    assert [seq for seq, _ in ends] == [1, 2, 3, 4, 5]
    entries = list(j.read_from(Position(1, 0)))
    assert [(e.seq, e.event, e.job_json) for e in entries] == [
        (i, ev(i), f'{{"id": {i}}}' if i % 2 else None) for i in range(1, 6)]
    assert [e.seq for e in j.read_from(ends[2][1])] == [4, 5]
    j.close()


def test_reopen_continues_numbering_in_a_new_segment_after_a_torn_line(tmp_path):
    j = Journal(tmp_path / "j")
    j.append(ev(1), None)
    _, end = j.append(ev(2), None)
    j.close()
    seg = tmp_path / "j" / "000001.log"
    data = bytearray(seg.read_bytes())
    data[end.offset:end.offset + 9] = b"3\t[\"compl"  # a line cut short by a kill
    seg.write_bytes(bytes(data))
    j = Journal(tmp_path / "j")
    seq, pos = j.append(ev(3), None)
    assert seq == 3 and pos.segment == 2
    assert [e.seq for e in j.read_from(Position(1, 0))] == [1, 2, 3]
    j.trim(pos)
    assert j.segments() == [2]
    j.discard()
    assert list(j.read_from(Position(1, 0))) == []
    j.close()


def test_segments_roll_over_and_fsync_mode_groups(tmp_path):
    j = Journal(tmp_path / "j", fsync=True, segment_bytes=200)
    for i in range(1, 21):
        j.append(ev(i), None)
    assert len(j.segments()) > 3
    assert [e.seq for e in j.read_from(Position(1, 0))] == list(range(1, 21))
    j.close()


def test_the_highest_key_survives_reopening_and_trimming(tmp_path):
    j = Journal(tmp_path / "j", segment_bytes=200)
    assert j.last_key == 0
    for i in range(1, 8):
        j.append(ev(i), None, key=10 * i)
    _, end = j.append(ev(8), None)  # an event without a key (a time event) keeps the highest
    assert j.last_key == 70
    assert [e.key for e in j.read_from(Position(1, 0))] == [10 * i for i in range(1, 8)] + [None]
    j.close()
    j = Journal(tmp_path / "j", segment_bytes=200)
    assert j.last_key == 70
    _, later = j.append(ev(9), None)  # a new segment, whose first line says 70
    j.trim(later)  # every segment with a keyed event is gone
    assert j.segments() == [later.segment]
    j.close()
    j = Journal(tmp_path / "j", segment_bytes=200)
    assert j.last_key == 70
    assert [e.seq for e in j.read_from(end)] == [9]  # the key line is not an event
    j.discard()
    assert j.last_key == 0
    j.close()


_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["caf\u00e9", 'q"\\\n\x00', "\u2028"]))
_KEYS = st.one_of(st.none(), st.integers(min_value=-2**70, max_value=2**70),
                  st.lists(st.one_of(_TEXT, st.integers(), st.booleans(), st.none()),
                           max_size=5))


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
       st.sampled_from(["job", "work", "subjob", "globaltime"]),
       st.integers(min_value=0, max_value=2**63 - 1), st.one_of(st.none(), _TEXT), _KEYS)
@example("complete", "work", 7, "shot 1", ["bench", 1, 7, "0a1b"])
@example("complete", "work", 7, None, [True, 1])
def test_a_journal_line_head_is_the_json_of_its_fields(name: str, typ: str, job: int,
                                                       extra: str | None,
                                                       key: JournalKey) -> None:
    """The head written directly is the text `json.dumps` writes, whatever the key."""
    event = Event(name=name, type=typ, job=job, extra=extra)  # type: ignore[arg-type]
    fields: list[object] = [event.name, event.type, event.job, event.extra]
    if key is not None:
        fields.append(key)
    assert _head(event, key) == json.dumps(fields)
