"""A start over a large backlog (firings a dead host recorded but never ran, events it
journalled but never matched) finishes all of it while holding only a bounded part in memory."""

from __future__ import annotations

import threading

from qbcallbacks.audit.backends import open_audit, open_journal
from qbcallbacks.audit.records import FiringRecord, PendingFiring
from qbcallbacks.audit.sqlite import SqliteAuditStore
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation, RunResult
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir
from support.postgres import Backend

#: The backlog is many times the bound it must be held to (`max_backlog` and a page), so a
#: start that read it whole, or let it pile up, would exceed the bound by far.
ORPHANS = 3_000
EVENTS = 3_000
#: Orphans that were already running at more kills than `max_reruns` allows.
CRASH_LOOPS = range(150, ORPHANS + 1, 150)
SETTINGS = DispatcherSettings(max_backlog=60, batch=20, queue_size=60, max_runs=4)


class CountingStore(SqliteAuditStore):
    """Counts the orphans read from the trail (the largest read too) and those marked lost."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.read = 0
        self.largest_read = 0
        self.lost = 0
        self.wholesale = False

    def claimed(self, after: int, upto: int, limit: int | None = None) -> list[FiringRecord]:
        page = super().claimed(after, upto, limit)
        self.read += len(page)
        self.largest_read = max(self.largest_read, len(page))
        return page

    def complete(self, firing_id: int, status: str, **outcome: object) -> None:
        self.lost += status == "lost"
        super().complete(firing_id, status, **outcome)  # type: ignore[arg-type]

    def claim_orphans(self) -> list[FiringRecord]:
        self.wholesale = True
        return super().claim_orphans()


class Sampler(RecordingRuntime):
    """Records (job, callback) per run and, at each run, how many firings are in memory:
    orphans read from the trail and not yet run, and every firing waiting or running."""

    def __init__(self, store: CountingStore) -> None:
        super().__init__()
        self.store = store
        self.order: list[tuple[int, str]] = []
        self.orphans_run = 0
        self.most_orphans_held = 0
        self.most_waiting = 0
        self.dispatcher: Dispatcher | None = None
        self.ready = threading.Event()

    def run(self, invocation: Invocation) -> RunResult:
        self.ready.wait(30)
        with self.lock:
            self.order.append((invocation.job_id, invocation.callback))
            if invocation.callback == "a.qcb":
                self.orphans_run += 1
            held = self.store.read - self.orphans_run - self.store.lost
            self.most_orphans_held = max(self.most_orphans_held, held)
            assert self.dispatcher is not None
            waiting = self.dispatcher.backlog
            self.most_waiting = max(self.most_waiting, waiting)
        return RunResult(status="ok", exit_code=0)


def leave_backlog(root: str, audit: str) -> None:
    """What a host killed with a large backlog leaves: pending firings of `a.qcb` for jobs
    1..ORPHANS, some already run too often, and EVENTS journalled, unmatched events whose
    `b.qcb` firings belong to the same jobs."""
    store = open_audit(audit)
    store.begin_session()
    ids = store.record_batch([], [
        PendingFiring(event_seq=i, ordinal=0, event=Event(name="complete", type="job", job=i + 1),
                      job=i + 1, callback="a.qcb", directory=root, trigger="complete-job-self",
                      language="qcb") for i in range(ORPHANS)])
    for job in CRASH_LOOPS:
        for _ in range(SETTINGS.max_reruns + 1):
            store.start(ids[job - 1], 0.0)
    journal = open_journal(store)
    for i in range(EVENTS):
        journal.append(Event(name="done", type="job", job=i % ORPHANS + 1), None)
    journal.close()
    Backend.crash(store)  # killed: no session end


def test_restart_over_a_large_backlog_holds_a_bounded_part_of_it(tmp_path):
    root = str(write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self",
                                           "b.qcb": "done-job-self"}))
    audit = str(tmp_path / "audit.db")
    leave_backlog(root, audit)
    store = CountingStore(audit)
    rt = Sampler(store)
    d = Dispatcher([root], MemorySupervisor(), runtimes=runtimes(rt), audit=store,
                   settings=SETTINGS)
    rt.dispatcher = d
    rt.ready.set()
    try:
        assert d.wait_idle(300)
        assert len(d.recovered) == ORPHANS
    finally:
        d.close()
    rows = store.query()
    store.close()

    # Everything finished: each orphan re-run once or marked lost, each event's firing run.
    assert len(rows) == ORPHANS + EVENTS
    lost = {r.job for r in rows if r.status == "lost"}
    assert lost == set(CRASH_LOOPS)
    assert all(r.status == "ok" for r in rows if r.job not in lost or r.callback == "b.qcb")
    assert len(rt.order) == ORPHANS + EVENTS - len(lost)
    # A job's re-run came before the firing of its new event.
    first: dict[int, str] = {}
    for job, callback in rt.order:
        first.setdefault(job, callback)
    assert all(first[job] == "a.qcb" for job in range(1, ORPHANS + 1) if job not in lost)

    # Bounded: orphans read a page at a time, never all at once, and never more in memory
    # than the backlog bound and a page; the same for every firing waiting or running.
    bound = SETTINGS.max_backlog + SETTINGS.batch
    assert not store.wholesale
    assert store.read == ORPHANS
    assert store.largest_read <= SETTINGS.batch
    assert rt.most_orphans_held <= bound
    assert rt.most_waiting <= bound


def test_recovered_reads_as_a_sequence_of_the_firings_as_they_stand(tmp_path):
    root = str(write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"}))
    audit = str(tmp_path / "audit.db")
    with Dispatcher([root], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                    audit=audit) as d:
        assert list(d.recovered) == [] and len(d.recovered) == 0
    store = open_audit(audit)
    store.begin_session()
    store.record_batch([], [PendingFiring(
        event_seq=0, ordinal=0, event=Event(name="complete", type="job", job=7), job=7,
        callback="a.qcb", directory=root, trigger="complete-job-self", language="qcb")])
    Backend.crash(store)  # killed: no session end
    with Dispatcher([root], MemorySupervisor(), runtimes=runtimes(RecordingRuntime()),
                    audit=audit) as d:
        assert d.wait_idle(30)
        assert [r.job for r in d.recovered] == [7] and d.recovered[0].status == "ok"
        assert list(d.recovered) == [d.recovered[0]] and d.recovered[-1:] == [d.recovered[0]]


def test_an_orphan_waits_for_its_run_as_the_bare_firing(tmp_path):
    from collections.abc import Callable

    from qbcallbacks.config.load import load_directory
    from qbcallbacks.dispatch.recovery import recover, settle

    root = str(write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self"}))
    audit = str(tmp_path / "audit.db")
    store = open_audit(audit)
    store.begin_session()
    store.record_batch([], [PendingFiring(
        event_seq=i, ordinal=0, event=Event(name="complete", type="job", job=i + 1, extra="x"),
        job=i + 1, callback="a.qcb", directory=root, trigger="complete-job-self",
        language="qcb", code="print(1)" if i == 1 else None) for i in range(3)])
    Backend.crash(store)
    store = open_audit(audit)
    store.begin_session()
    found = recover(store, open_journal(store))
    rows = list(found.orphans)

    class Writer:
        def outcome(self, firing_id: int, result: RunResult) -> None:
            raise AssertionError(f"firing {firing_id} should run again, not {result.status}")

        def retry(self, what: Callable[[], object]) -> object:
            return what()

    rules = load_directory(root).rules
    pages = list(settle(found.orphans, rules, SETTINGS, Writer()))
    reruns = [f for page in pages for f in page]
    store.close()
    assert len(rows) == 3 and all(type(r) is FiringRecord for r in rows)
    assert all(type(f) is PendingFiring for f in reruns)
    assert [f.model_dump() for f in reruns] == [
        r.model_dump(include=set(PendingFiring.model_fields)) for r in rows]
    assert reruns[1].code == "print(1)" and reruns[0].event.extra == "x"
    assert [f.id for f in reruns] == [r.id for r in rows] and all(f.id for f in reruns)
