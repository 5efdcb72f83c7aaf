from __future__ import annotations

import time

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.journal import Position
from qbcallbacks.audit.store import (
    EXCERPT_HEAD,
    AuditError,
    PendingFiring,
    excerpt,
)
from qbcallbacks.model.events import Event


def pending(seq: int, job: int, callback: str = "a.py", ordinal: int = 0) -> PendingFiring:
    return PendingFiring(event_seq=seq, ordinal=ordinal,
                         event=Event(name="complete", type="work", job=job, extra="5"), job=job,
                         callback=callback, directory="/cb", trigger="complete-work-self-*",
                         language="python")


def test_pending_then_completed(backend):
    store = open_audit(backend.location())
    store.begin_session()
    ev = Event(name="complete", type="work", job=3, extra="5")
    ids = store.record_batch([(0, ev, {"id": 3})], [pending(0, 3), pending(0, 3, "b.pl", 1)])
    assert ids == [1, 2]
    assert [r.status for r in store.query()] == ["pending", "pending"]
    store.complete(ids[0], "ok", exit_code=0, output="hello", started_at=1.0, finished_at=2.0,
                   duration=1.0)
    store.complete(ids[1], "error", exit_code=3, error="died")
    store.flush()
    done = store.query(status="ok")
    assert len(done) == 1 and done[0].output == "hello" and done[0].attempts == 1
    assert done[0].event == ev
    assert store.query(callback="b.pl")[0].exit_code == 3
    assert store.query(job=4) == []
    assert store.events()[0].job_data == {"id": 3}
    assert store.counts() == {("a.py", "ok"): 1, ("b.pl", "error"): 1}
    store.close()


def test_orphans_of_a_dead_session_are_claimed_once(backend):
    path = backend.location()
    first = open_audit(path)
    first.begin_session()
    first.record_batch([], [pending(0, 1), pending(1, 2)])
    first.complete(1, "ok")
    first.flush()
    backend.crash(first)  # no end_session, no close; the lock is dropped
    second = open_audit(path)
    session = second.begin_session()
    orphans = second.claim_orphans()
    assert [o.job for o in orphans] == [2]
    assert second.claim_orphans() == []  # now owned by this session
    assert second.query(status="pending")[0].session == session
    # New ids continue after the old ones.
    assert second.record_batch([], [pending(2, 3)]) == [3]
    second.close()


def test_orphans_are_adopted_at_once_and_read_back_in_pages(backend):
    path = backend.location()
    first = open_audit(path)
    first.begin_session()
    first.record_batch([], [pending(i, i + 1) for i in range(7)])
    first.complete(3, "ok")
    first.flush()
    backend.crash(first)
    second = open_audit(path)
    second.begin_session()
    count, top = second.adopt_orphans()
    assert (count, top) == (6, 7)
    assert second.adopt_orphans() == (0, 0)  # now owned by this session
    # Firings recorded after the adoption stay out of the orphans' id range.
    assert second.record_batch([], [pending(7, 8)]) == [8]
    pages, after = [], 0
    while page := second.claimed(after, top, 4):
        pages.append([r.job for r in page])
        after = page[-1].id
    assert pages == [[1, 2, 4, 5], [6, 7]]
    assert second.claimed(0, top, 1)[0].status == "pending"
    second.close()


def test_query_by_time_and_readonly(backend):
    path = backend.location()
    store = open_audit(path)
    store.begin_session()
    before = time.time() - 1
    store.record_batch([], [pending(0, 1)])
    store.end_session()
    store.close()
    reader = open_audit(path, readonly=True)
    assert len(reader.query(since=before)) == 1
    assert reader.query(until=before) == []
    assert len(reader.query(status=["ok", "pending"], limit=5, newest_first=True)) == 1
    reader.close()
    with pytest.raises(AuditError):
        open_audit(backend.missing(), readonly=True)


def test_excerpt_keeps_head_and_tail():
    text = "a" * EXCERPT_HEAD + "b" * 5000 + "c" * 1000
    cut = excerpt(text)
    assert cut.startswith("a" * EXCERPT_HEAD) and cut.endswith("c" * 1000)
    assert "5000 characters cut" in cut
    assert excerpt("short") == "short"


def test_a_failure_of_any_kind_inside_a_write_leaves_no_transaction_open(backend) -> None:
    """A value the trail cannot store (here an id past 64 bits, which the models refuse, forced
    in) fails its own batch only: the next batch commits."""
    store = open_audit(backend.location())
    store.begin_session()
    forced = Event.model_construct(name="complete", type="job", job=2**64, extra=None)
    with pytest.raises((OverflowError, AuditError)):  # SQLite's driver, or the server, says
        store.record_batch([(1, forced, None)], [])
    good = Event(name="complete", type="job", job=1)
    store.record_batch([(2, good, None)], [])
    assert [e.seq for e in store.events()] == [2]
    store.close()


def test_an_attempt_counted_before_a_crash_is_known_to_the_next_writer(backend):
    """On PostgreSQL the attempt is a local run mark until the next batch or flush: a writer
    killed in between leaves it for the next one to ship before it reads any attempt."""
    path = backend.location()
    first = open_audit(path)
    first.begin_session()
    (fid,) = first.record_batch([], [pending(0, 1)])
    assert first.start(fid, 1.0) == 1
    backend.crash(first)
    second = open_audit(path)
    second.begin_session()
    (orphan,) = second.claim_orphans()
    assert (orphan.id, orphan.attempts) == (fid, 1)
    assert second.start(fid, 2.0) == 2
    second.complete(fid, "ok", exit_code=0)
    second.flush()
    (row,) = second.query()
    assert (row.status, row.attempts, row.started_at) == ("ok", 2, 2.0)
    second.close()


def test_a_batch_commits_the_marks_and_outcomes_waiting_with_its_own_rows(backend):
    """Runs started, or started and ended, since the last write ride along with the next
    batch: each firing ends up as the mark and then the outcome would leave it, whether a
    firing has a mark, an outcome or both waiting."""
    store = open_audit(backend.location())
    store.begin_session()
    a, b, c = store.record_batch([], [pending(0, 1), pending(0, 2), pending(0, 3)])
    assert store.start(a, 1.0) == 1  # still running
    assert store.start(b, 2.0) == 1
    store.complete(b, "ok", exit_code=0, started_at=2.5, finished_at=3.0, duration=0.5)
    store.complete(c, "error", error="never started")
    ev = Event(name="complete", type="job", job=4)
    (d,) = store.record_batch([(1, ev, None)], [pending(1, 4)], Position(3, 40), 7)
    rows = {r.id: r for r in store.query()}
    assert (rows[a].status, rows[a].attempts, rows[a].started_at) == ("pending", 1, 1.0)
    assert (rows[b].status, rows[b].attempts, rows[b].started_at,
            rows[b].finished_at) == ("ok", 1, 2.0, 3.0)
    assert (rows[c].status, rows[c].attempts, rows[c].started_at) == ("error", 1, None)
    assert rows[d].status == "pending" and d > c
    assert store.journal_position() == (Position(3, 40), 7)
    assert [(e.seq, e.event) for e in store.events()] == [(1, ev)]
    assert store.start(a, 4.0) == 2  # a second attempt of the run still in progress
    store.complete(a, "ok", exit_code=0)
    store.record_batch([], [])
    assert [(r.attempts, r.started_at, r.status) for r in store.query(ids=[a])] == [
        (2, 4.0, "ok")]
    store.close()


def test_batches_of_any_size_keep_every_row_and_number_the_firings_in_order(backend):
    """Rows go many to a statement, in chunks: sizes around the chunks lose nothing."""
    store = open_audit(backend.location())
    store.begin_session()
    seq, ids = 0, []
    for size in (1, 255, 256, 257, 300):
        events = [(seq + i, Event(name="complete", type="job", job=i + 1), None)
                  for i in range(size)]
        ids += store.record_batch(events, [pending(seq + i, i + 1) for i in range(size)])
        seq += size
    assert ids == list(range(ids[0], ids[0] + seq))
    assert [e.seq for e in store.events()] == list(range(seq))
    for n, fid in enumerate(ids):
        assert store.start(fid, float(n)) == 1
        store.complete(fid, "ok", exit_code=0, finished_at=float(n) + 0.5)
    store.flush()
    rows = store.query()
    assert [(r.id, r.event_seq, r.status, r.attempts, r.started_at) for r in rows] == [
        (fid, n, "ok", 1, float(n)) for n, fid in enumerate(ids)]
    store.close()
