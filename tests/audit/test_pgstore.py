"""The PostgreSQL trail and journal on a real server: one lease per trail, several services on
one database, the journal's numbering and read-back, text PostgreSQL cannot hold, and
`history` reading a trail by URL."""

from __future__ import annotations

import json
import os
import threading

import pytest

from qbcallbacks.audit.backends import open_audit, open_journal
from qbcallbacks.audit.journal import Journal, JournalError, Position
from qbcallbacks.audit.pgjournal import TRIM_EVERY, PgJournal
from qbcallbacks.audit.pgstore import PgAuditStore, shown, split_url
from qbcallbacks.audit.records import PendingFiring
from qbcallbacks.audit.store import AuditError, AuditInUse
from qbcallbacks.cli import main
from qbcallbacks.dispatch.dispatcher import Dispatcher
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir
from support.postgres import Backend


def trail(url: str, name: str) -> str:
    return f"{url}&trail={name}"


def firing(job: int) -> PendingFiring:
    return PendingFiring(event_seq=0, ordinal=0, event=Event(name="complete", type="job", job=job),
                         job=job, callback="a.qcb", directory="/cb", trigger="complete-job-self",
                         language="qcb")


def test_the_trail_name_is_ours_and_passwords_are_never_shown() -> None:
    assert split_url("postgresql://u@h/db?trail=farm_a&sslmode=disable") == (
        "postgresql://u@h/db?sslmode=disable", "farm_a")
    assert split_url("postgresql://u@h/db")[1] == "default"
    assert "secret" not in shown("postgresql://u:secret@h/db")


def test_one_writer_per_trail_many_trails_per_database(postgres_url) -> None:
    a = open_audit(trail(postgres_url, "a"))
    assert isinstance(a, PgAuditStore)
    with pytest.raises(AuditInUse, match="being written by process"):
        open_audit(trail(postgres_url, "a"))
    b = open_audit(trail(postgres_url, "b"))  # another supervisor's service
    reader = open_audit(trail(postgres_url, "a"), readonly=True)  # readers never wait
    a.begin_session()
    b.begin_session()
    assert a.record_batch([], [firing(1), firing(2)]) == [1, 2]
    assert b.record_batch([], [firing(7)]) == [3]
    assert [r.job for r in reader.query()] == [1, 2]
    assert [r.job for r in b.query()] == [7]
    a.close()
    again = open_audit(trail(postgres_url, "a"))  # the lease went with the writer
    again.begin_session()
    assert [o.job for o in again.claim_orphans()] == [1, 2]
    assert [o.job for o in b.claim_orphans()] == []
    for store in (again, b, reader):
        store.close()


def test_unreachable_servers_and_missing_trails_are_audit_errors(postgres_url) -> None:
    with pytest.raises(AuditError, match="cannot open"):
        open_audit(postgres_url.replace("/test_", "/nowhere_"))
    with pytest.raises(AuditError, match="no audit trail"):
        open_audit(postgres_url, readonly=True)  # nothing was ever written there


def test_text_postgresql_cannot_hold_is_kept_readable(postgres_url) -> None:
    store = open_audit(postgres_url)
    store.begin_session()
    (fid,) = store.record_batch([(0, Event(name="complete", type="work", job=1, extra="a\x00b"),
                                  {"id": 1, "name": "x\x00"})], [firing(1)])
    store.complete(fid, "error", output="out\x00put", error="bad\x00")
    store.flush()
    (row,) = store.query()
    assert (row.output, row.error) == ("out\ufffdput", "bad\ufffd")
    assert store.events()[0].event.extra == "a\ufffdb"
    store.close()


def test_the_journal_is_local_unless_the_url_asks_for_the_table(postgres_url, tmp_path) -> None:
    store = open_audit(trail(postgres_url, "farm_a"))
    journal = open_journal(store)
    assert isinstance(journal, Journal) and journal.directory == store.journal_dir()
    assert str(journal.directory).startswith(os.environ["XDG_STATE_HOME"])
    assert journal.directory.name.startswith(f"{store.path.name}-")
    journal.close()
    store.close()
    here = open_audit(f"{trail(postgres_url, 'farm_b')}&journal={tmp_path / 'j'}")
    assert here.dsn == split_url(postgres_url)[0]  # our parameters never reach the server
    journal = open_journal(here)
    assert isinstance(journal, Journal) and journal.directory == tmp_path / "j"
    journal.close()
    here.close()


def test_the_journal_numbers_and_reads_back_in_order(postgres_url) -> None:
    store = open_audit(f"{postgres_url}&journal=table")
    journal = open_journal(store)
    assert isinstance(journal, PgJournal)
    ends = [journal.append(Event(name="complete", type="job", job=j), json.dumps({"id": j}))
            for j in (1, 2, 3)]
    assert [seq for seq, _ in ends] == [1, 2, 3]
    assert [e.seq for e in journal.read_from(ends[0][1])] == [2, 3]
    assert [e.event.job for e in journal.read_from(Position(1, 0))] == [1, 2, 3]
    journal.trim(ends[1][1])
    assert [e.seq for e in journal.read_from(Position(1, 0))] == [3]
    journal.close()
    reopened = open_journal(store, fsync=True)
    reopened.ensure_after(10)
    assert reopened.append(Event(name="x", type="job", job=4), None)[0] == 11
    reopened.discard()
    assert list(reopened.read_from(Position(1, 0))) == []
    reopened.close()
    store.close()


def test_the_highest_key_survives_restarts_and_trims(postgres_url) -> None:
    store = open_audit(f"{postgres_url}&journal=table")
    journal = open_journal(store)
    assert journal.last_key == 0
    journal.append(Event(name="a", type="job", job=1), None, key=7)
    _, end = journal.append(Event(name="b", type="job", job=1), None, key=5)
    journal.append(Event(name="c", type="job", job=1), None)
    journal.trim(end)
    journal.close()
    again = open_journal(store)
    assert again.last_key == 7
    again.discard()
    assert again.last_key == 0
    again.close()
    store.close()


def test_two_services_on_one_database_each_run_their_own(postgres_url, tmp_path) -> None:
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"})
    runs = {name: RecordingRuntime() for name in ("farm_a", "farm_b")}
    dispatchers = {name: Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                                    audit=trail(postgres_url, name))
                   for name, rt in runs.items()}

    def feed(name: str, jobs: range) -> None:
        for job in jobs:
            dispatchers[name].emit(Event(name="complete", type="job", job=job))

    threads = [threading.Thread(target=feed, args=("farm_a", range(1, 41))),
               threading.Thread(target=feed, args=("farm_b", range(100, 125)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for d in dispatchers.values():
        assert d.wait_idle(60)
        d.close()
    assert sorted(c.job_id for c in runs["farm_a"].calls) == list(range(1, 41))
    assert sorted(c.job_id for c in runs["farm_b"].calls) == list(range(100, 125))
    for name, count in (("farm_a", 40), ("farm_b", 25)):
        reader = open_audit(trail(postgres_url, name), readonly=True)
        rows = reader.query()
        reader.close()
        assert len(rows) == count and {r.status for r in rows} == {"ok"}


def test_history_reads_a_postgresql_trail(postgres_url, tmp_path, capsys) -> None:
    store = open_audit(trail(postgres_url, "farm_a"))
    store.begin_session()
    (fid,) = store.record_batch([], [firing(5)])
    store.complete(fid, "ok", exit_code=0)
    store.end_session()
    store.close()
    code = main(["history", "--audit", trail(postgres_url, "farm_a"), "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    rows = rows["firings"] if isinstance(rows, dict) else rows
    assert [(r["job"], r["status"]) for r in rows] == [(5, "ok")]
    assert main(["history", "--audit", postgres_url.replace("/test_", "/nowhere_")]) == 2


def test_a_dropped_connection_is_made_again_and_the_lease_taken_again(postgres_url) -> None:
    import psycopg

    store = open_audit(f"{trail(postgres_url, 'farm_a')}&journal=table")
    journal = open_journal(store)
    store.begin_session()
    journal.append(Event(name="a", type="job", job=1), None)
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server drops them
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    with pytest.raises(AuditError):
        store.record_batch([], [firing(1)])  # this one sees the connection go
    assert store.record_batch([], [firing(2)]) == [1]  # connected again, lease again
    with pytest.raises(AuditInUse):
        open_audit(trail(postgres_url, "farm_a"))
    with pytest.raises(JournalError):
        journal.append(Event(name="b", type="job", job=1), None)
    assert journal.append(Event(name="c", type="job", job=1), None)[0] == 2
    assert [e.event.name for e in journal.read_from(Position(1, 0))] == ["a", "c"]
    journal.close()
    store.close()


def test_appends_from_many_threads_are_numbered_once_each_in_order(postgres_url) -> None:
    store = open_audit(f"{postgres_url}&journal=table")
    journal = open_journal(store)
    got: list[int] = []

    def append(job: int) -> None:
        for _ in range(50):
            got.append(journal.append(Event(name="complete", type="job", job=job), None)[0])

    threads = [threading.Thread(target=append, args=(job,)) for job in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 401))
    entries = list(journal.read_from(Position(1, 0)))
    assert [e.seq for e in entries] == list(range(1, 401))
    for job in range(1, 9):  # each thread's events in the order it appended them
        mine = [e.seq for e in entries if e.event.job == job]
        assert mine == sorted(mine) and len(mine) == 50
    assert entries[-1].end.segment == 1 + 400 // TRIM_EVERY  # the block the recorder trims by
    journal.close()
    store.close()


def test_a_writer_that_died_on_another_host_is_named(postgres_url, caplog) -> None:
    import psycopg

    url = trail(postgres_url, "farm_a")
    first = open_audit(url)
    first.begin_session()
    Backend.crash(first)  # killed
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("UPDATE sessions SET host = 'render-07'")
    second = open_audit(url)
    second.begin_session()
    assert second.previous_session_died
    assert "died on host render-07" in caplog.text and "local journal there" in caplog.text
    second.close()
