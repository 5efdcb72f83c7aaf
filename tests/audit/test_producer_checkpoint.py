"""The producers' checkpoint in the trail (SQLite and PostgreSQL), and the journal's part:
producer keys read back, segments kept from the checkpoint's position, spare room given back."""

from __future__ import annotations

from pathlib import Path

from qbcallbacks.audit.backends import open_audit, open_journal
from qbcallbacks.audit.journal import Journal, Position, release_tails
from qbcallbacks.audit.producers import ProducerRow
from qbcallbacks.model.events import Event
from qbcallbacks.service.producers import WINDOW, ProducerBook, Verdict


def ev(job: int) -> Event:
    return Event(name="complete", type="job", job=job)


def _checkpoint_round_trip(location: str | Path) -> None:
    store = open_audit(location)
    assert store.load_producers().rows == [] and store.load_producers().position is None
    rows = [ProducerRow("farm", 1, s, f"d{s}") for s in range(1, 6)]
    store.save_producers(rows, Position(1, 500), keep=3)
    loaded = store.load_producers()
    assert loaded.position == Position(1, 500)
    assert [r.seq for r in loaded.rows] == [3, 4, 5]  # the newest `keep` seqs
    # A new epoch replaces the old one; another producer is kept beside it.
    store.save_producers([ProducerRow("farm", 2, 1, "x"), ProducerRow("web", 1, 9, "w")],
                         Position(2, 40), keep=3)
    loaded = store.load_producers()
    assert loaded.rows == [ProducerRow("farm", 2, 1, "x"), ProducerRow("web", 1, 9, "w")]
    assert loaded.position == Position(2, 40)
    store.close()


def test_the_checkpoint_round_trips_in_sqlite(tmp_path: Path) -> None:
    _checkpoint_round_trip(tmp_path / "audit.db")


def test_the_checkpoint_round_trips_in_postgresql(postgres_url: str) -> None:
    _checkpoint_round_trip(postgres_url)


def test_producer_keys_come_back_from_the_postgresql_journal(postgres_url: str) -> None:
    store = open_audit(f"{postgres_url}&journal=table")  # the journal kept in the database
    journal = open_journal(store)
    journal.append(ev(1), None, key=["farm", 1, 1, "d1"])
    _, end = journal.append(ev(2), None, key=5)
    assert journal.key_end == end
    assert [e.key for e in journal.read_from(Position(1, 0))] == [["farm", 1, 1, "d1"], 5]
    journal.keep_from = Position(1, 1)
    journal.trim(end)  # kept from the checkpoint's position on
    assert [e.key for e in journal.read_from(Position(1, 0))] == [5]
    journal.close()
    store.close()


def test_the_file_journal_keeps_what_the_checkpoint_does_not_cover(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j", segment_bytes=200)
    ends = [j.append(ev(i), None, key=["farm", 1, i, f"d{i}"]) for i in range(1, 11)]
    assert j.key_end == ends[-1][1]
    assert [e.key for e in j.read_from(Position(1, 0))] == [
        ["farm", 1, i, f"d{i}"] for i in range(1, 11)]
    j.keep_from = ends[2][1]
    j.trim(ends[-1][1])  # matched to the end, but the checkpoint is behind
    assert j.segments()[0] == ends[2][1].segment
    j.close()
    book = ProducerBook()
    assert book.replay(Journal(tmp_path / "j").read_from(ends[2][1])) == ends[-1][1]
    assert book.last_seq("farm", 1) == 10 and book.judge("farm", 1, 5, "d5")[0] == \
        Verdict.DUPLICATE


def test_release_tails_gives_back_zeroes_but_never_touches_a_torn_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j", segment_bytes=4096)
    _, end = j.append(ev(1), None)
    j.close()
    seg = tmp_path / "j" / "000001.log"
    assert seg.stat().st_size == 4096
    assert release_tails(tmp_path / "j") == 4096 - end.offset
    assert seg.stat().st_size == end.offset
    again = Journal(tmp_path / "j", segment_bytes=4096)
    again.append(ev(2), None)
    again.close()
    torn = tmp_path / "j" / "000002.log"
    data = bytearray(torn.read_bytes())
    cut = data.rfind(b"\n") + 1
    data[cut:cut + 5] = b"3\t[\"c"
    torn.write_bytes(bytes(data))
    assert release_tails(tmp_path / "j") == 0
    assert torn.stat().st_size == 4096
    assert [e.seq for e in Journal(tmp_path / "j").read_from(Position(1, 0))] == [1, 2]


def test_the_book_judges_by_producer_epoch_seq_and_content() -> None:
    book = ProducerBook()
    assert book.judge("a", 1, 5, "x")[0] == Verdict.NEW
    book.taken("a", 1, 5, "x")
    assert book.judge("a", 1, 5, "x")[0] == Verdict.DUPLICATE
    verdict, why = book.judge("a", 1, 5, "y")
    assert verdict == Verdict.CONFLICT and "other content" in why
    assert book.judge("a", 1, 3, "x")[1].endswith("cannot be taken now")  # a gap
    assert book.judge("b", 1, 5, "x")[0] == Verdict.NEW  # another producer
    book.refused("a", 1, 6)
    verdict, why = book.judge("a", 1, 7, "z")
    assert verdict == Verdict.OWED and "re-send from seq 6" in why
    assert book.judge("a", 1, 6, "z")[0] == Verdict.NEW
    book.taken("a", 1, 6, "z")
    assert book.owed("a", 1) is None
    book.taken("a", 2, 1, "n")  # a new epoch replaces the old one
    assert book.judge("a", 1, 7, "z")[0] == Verdict.CONFLICT
    for seq in range(2, WINDOW + 3):
        book.taken("a", 2, seq, "n")
    assert "older than the last" in book.judge("a", 2, 1, "n")[1]

