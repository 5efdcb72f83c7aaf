"""The global callbacks' table on both backends (one SQL module, two dialects): added, refused,
removed, the last instant kept, trails of one PostgreSQL database kept apart, and a dispatcher
on a PostgreSQL trail taking its global callbacks back after a restart."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.sqlite import SqliteAuditStore
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.matching.clock import ManualClock, from_qube
from qbcallbacks.reference.memory import MemorySupervisor


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "audit.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_the_table_keeps_every_submission_with_its_state(location: str) -> None:
    store = open_audit(location)
    try:
        table = store.global_callbacks()
        kept = table.add("globaltime-100", "python", "print(1)")
        refused = table.refuse("done-job-self", "python", "print(2)", "it has no job")
        other = table.add("global", "qube", "mail-status\n")
        table.fired(kept.id, 100.0)
        assert table.remove(other.id) and not table.remove(other.id)
        assert [(g.id, g.trigger, g.last_instant) for g in table.active()] == [
            (kept.id, "globaltime-100", 100.0)]
        assert [(r.id, r.state, r.reason) for r in table.rows()] == [
            (kept.id, "active", None), (refused, "refused", "it has no job"),
            (other.id, "removed", None)]
    finally:
        store.close()
    reader = open_audit(location, readonly=True)
    try:
        assert [g.id for g in reader.global_callbacks().active()] == [kept.id]
    finally:
        reader.close()


def test_a_trail_written_before_the_table_existed_lists_none(tmp_path: Path) -> None:
    SqliteAuditStore(tmp_path / "audit.db").close()
    with contextlib.closing(sqlite3.connect(tmp_path / "audit.db")) as older:
        older.execute("DROP TABLE global_callbacks")
        older.commit()
    reader = SqliteAuditStore(tmp_path / "audit.db", readonly=True)
    try:
        assert reader.global_callbacks().rows() == []
    finally:
        reader.close()


def test_trails_of_one_postgres_database_have_their_own(postgres_url: str) -> None:
    sep = "&" if "?" in postgres_url else "?"
    first, second = (open_audit(f"{postgres_url}{sep}trail={name}") for name in ("a", "b"))
    try:
        first.global_callbacks().add("global", "python", "pass")
        assert second.global_callbacks().rows() == []
    finally:
        first.close()
        second.close()


def test_a_dispatcher_on_postgres_takes_its_global_callbacks_back(postgres_url: str,
                                                                  tmp_path: Path) -> None:
    root = tmp_path / "cb"
    root.mkdir()
    (root / "callbacks.conf").write_text("")
    clock = ManualClock(start=from_qube(1_000_000))
    settings = DispatcherSettings(allow_global_callbacks=True)

    def start() -> Dispatcher:
        return Dispatcher([str(root)], MemorySupervisor(), mode="in-process", clock=clock,
                          settings=settings, audit=postgres_url)

    with start() as d:
        gid = d.submit_global("globaltime-1000010", language="python", code="print('on')")
        clock.set(from_qube(1_000_020))
        assert d.wait_idle(30)
    with start() as again:
        assert [g.id for g in again.globals()] == [gid]
        assert again.wait_idle(30)
        fired = [r for r in again.audit.query() if r.callback == f"global:{gid}"]
        assert len(fired) == 1  # the first session's, not fired again
