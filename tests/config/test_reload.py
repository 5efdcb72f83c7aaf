from __future__ import annotations

import sys
import threading
import time

import pytest

from qbcallbacks.config.watch import Watcher
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.model.events import Event
from qbcallbacks.model.limits import default_limits
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import RecordingRuntime, runtimes, write_dir


def ev(name, typ, job, extra=None):
    return Event(name=name, type=typ, job=job, extra=extra)


def make(tmp_path, lines, **kw):
    root = write_dir(tmp_path / "cb", lines)
    rt = RecordingRuntime()
    found: list[tuple[str, tuple]] = []
    d = Dispatcher([str(root)], MemorySupervisor(), runtimes=runtimes(rt),
                   audit=tmp_path / "audit.db",
                   on_diagnostics=lambda directory, diags: found.append((directory, tuple(diags))),
                   **kw)
    return d, rt, root, found


def test_reload_picks_up_a_new_rule(tmp_path):
    d, rt, root, _ = make(tmp_path, {"a.qcb": "complete-job-self"})
    with d:
        write_dir(root, {"a.qcb": "complete-job-self", "b.qcb": "complete-job-self"})
        assert d.reload() == []
        d.emit(ev("complete", "job", 1))
        assert d.wait_idle(10)
    assert [c.callback for c in rt.calls] == ["a.qcb", "b.qcb"]


def test_broken_config_keeps_the_last_good_rules(tmp_path):
    d, rt, root, found = make(tmp_path, {"a.qcb": "complete-job-self"})
    with d:
        (root / "callbacks.conf").write_text("a.qcb = complete-job-self &&\nb.qcb = \n")
        diags = d.reload()
        assert any(x.severity == "error" for x in diags)
        assert found and found[-1][0] == str(root)
        assert [r.file for r in d.rules] == ["a.qcb"]
        d.emit(ev("complete", "job", 1))
        assert d.wait_idle(10)
    assert [c.callback for c in rt.calls] == ["a.qcb"]
    assert any(x.severity == "error" for x in d.diagnostics[str(root)])


def test_compound_state_of_unchanged_rules_survives_a_reload(tmp_path):
    both = "complete-job-self && complete-work-self-1"
    d, rt, root, _ = make(tmp_path, {"a.qcb": both})
    with d:
        d.emit(ev("complete", "work", 4, "1"))
        assert d.wait_idle(10)
        # An edit elsewhere in the file: a.qcb keeps its half-satisfied state.
        write_dir(root, {"z.qcb": "killed-job-self", "a.qcb": both})
        assert d.reload() == []
        d.emit(ev("complete", "job", 4))
        assert d.wait_idle(10)
    assert [c.callback for c in rt.calls] == ["a.qcb"]


def test_broken_config_written_during_a_run_is_reported_by_the_watcher(tmp_path):
    d, rt, root, found = make(tmp_path, {"a.qcb": "complete-job-self"}, watch=True)
    rt.hold.clear()
    try:
        d.emit(ev("complete", "job", 1))
        assert rt.started.wait(5)  # a run is in progress
        (root / "callbacks.conf").write_text("a.qcb = complete-job-self\nb.qcb = nonsense\n")
        deadline = time.monotonic() + 10
        while not any(any(x.severity == "error" for x in diags) for _, diags in found):
            assert time.monotonic() < deadline, "the watcher never reloaded"
            time.sleep(0.02)
        rt.hold.set()
        d.emit(ev("complete", "job", 2))
        assert d.wait_idle(10)
    finally:
        rt.hold.set()
        d.close()
    assert [r.file for r in d.rules] == ["a.qcb"]
    assert [(c.callback, c.job_id) for c in rt.calls] == [("a.qcb", 1), ("a.qcb", 2)]
    assert all(r.status == "ok" for r in d.audit.query())


def test_watcher_maps_paths_to_directories(tmp_path):
    a = write_dir(tmp_path / "a", {"x.qcb": "complete-job-self"})
    b = write_dir(tmp_path / "b", {"y.qcb": "complete-job-self"})
    w = Watcher([str(a), str(b)], lambda dirs: None)
    assert w.directories_of([str(b / "y.qcb")]) == [str(b)]
    assert w.directories_of([str(a / "callbacks.conf"), str(b / "y.qcb")]) == [str(a), str(b)]
    assert w.directories_of([str(tmp_path / "elsewhere")]) == []
    w.start()
    w.stop()


@pytest.mark.parametrize(("attach", "job_one"), [("submission", ["a.qcb"]), ("live", ["b.qcb"])])
def test_reload_policy_decides_what_a_job_already_live_keeps(tmp_path, attach, job_one):
    d, rt, root, _ = make(tmp_path, {"a.qcb": "complete-job-self"},
                          settings=DispatcherSettings(attach=attach))
    with d:
        d.emit(ev("submit", "job", 1))
        assert d.wait_idle(10)
        (root / "callbacks.conf").write_text("b.qcb = complete-job-self\n")
        write_dir(root, {"b.qcb": "complete-job-self"})
        assert d.reload() == []
        d.emit(ev("complete", "job", 1))
        d.emit(ev("complete", "job", 2))
        assert d.wait_idle(10)
    calls = [(c.callback, c.job_id) for c in rt.calls]
    assert [name for name, job in calls if job == 1] == job_one
    assert [name for name, job in calls if job == 2] == ["b.qcb"]


@pytest.fixture
def big_configs(monkeypatch):
    """callbacks.conf files past the default size limit (read once per process)."""
    monkeypatch.setenv("QBCALLBACKS_MAX_CONFIG_BYTES", str(16 << 20))
    default_limits.cache_clear()
    yield
    monkeypatch.undo()
    default_limits.cache_clear()


def big_config(root, rules: int) -> None:
    """`rules` distinct lines, none of which fires for the events these tests send."""
    (root / "callbacks.conf").write_text("a.qcb = complete-job-self\n" + "".join(
        f"b.qcb = complete-work-self-{i}\n" for i in range(rules)))
    (root / "b.qcb").write_text("unblock-self\n")
    (root / "b.qcb").chmod(0o644)


def test_a_reload_over_budget_keeps_the_rules_while_events_are_taken(tmp_path, big_configs):
    d, rt, root, found = make(tmp_path, {"a.qcb": "complete-job-self"},
                              settings=DispatcherSettings(reload_budget=0.2))
    with d:
        big_config(root, 80_000)
        outcome: list[list] = []
        reloading = threading.Thread(target=lambda: outcome.append(d.reload()))
        reloading.start()
        sent, during = 0, 0
        while reloading.is_alive() or sent < 20:
            d.emit(ev("running", "job", 5))
            sent += 1
            during += reloading.is_alive()  # taken (emit returned) with the reload running
        reloading.join()
        assert during > 0
        assert [x.code for x in outcome[0]] == ["QCB150"]
        assert found[-1][1][0].code == "QCB150"
        assert [r.file for r in d.rules] == ["a.qcb"]
        d.emit(ev("complete", "job", 7))
        assert d.wait_idle(60)
        assert len(d.audit.events(d.session)) == sent + 1
    assert [(c.callback, c.job_id) for c in rt.calls] == [("a.qcb", 7)]


def test_a_big_reload_is_built_while_the_matcher_goes_on(tmp_path, big_configs):
    # A queue of 20: more than 20 events taken during the reload means the matcher thread
    # kept taking them while the new set was being read and built.
    d, rt, root, _ = make(tmp_path, {"a.qcb": "complete-job-self"},
                          settings=DispatcherSettings(reload_budget=600, queue_size=20,
                                                        emit_timeout=60))
    with d:
        big_config(root, 60_000)
        outcome: list[list] = []
        reloading = threading.Thread(target=lambda: outcome.append(d.reload()))
        reloading.start()
        sent, during = 0, 0
        while reloading.is_alive():
            d.emit(ev("running", "job", 5))
            sent += 1
            during += reloading.is_alive()
        reloading.join()
        assert outcome == [[]]
        assert during > 20
        assert len(d.rules) == 60_001
        d.emit(ev("complete", "work", 7, "0"))
        d.emit(ev("complete", "job", 7))
        assert d.wait_idle(60)
        assert len(d.audit.events(d.session)) == sent + 2
    assert [(c.callback, c.job_id) for c in rt.calls] == [("b.qcb", 7), ("a.qcb", 7)]


@pytest.mark.parametrize("budget", [600.0, 0.05])
def test_a_reload_shortens_the_switch_interval_only_while_it_builds(tmp_path, monkeypatch,
                                                                     budget):
    from qbcallbacks.dispatch import reload as reload_module

    seen: list[float] = []
    real_check = reload_module._Run.check

    def check(run):
        seen.append(sys.getswitchinterval())
        real_check(run)

    monkeypatch.setattr(reload_module._Run, "check", check)
    before = sys.getswitchinterval()
    d, _rt, root, _ = make(tmp_path, {"a.qcb": "complete-job-self"},
                           settings=DispatcherSettings(reload_budget=budget))
    with d:
        big_config(root, 20_000)
        found = d.reload()
        if budget < 1:  # abandoned: the late loader stops at its next check
            assert [x.code for x in found] == ["QCB150"]
            d._book._worker.join(60)
            assert seen and seen[0] == reload_module.SWITCH_INTERVAL
        else:
            assert found == [] and len(d.rules) == 20_001
            # Every check of the build but the last one (made as the build is queued).
            assert seen and seen[:-1].count(reload_module.SWITCH_INTERVAL) == len(seen) - 1
        assert before > reload_module.SWITCH_INTERVAL
    assert sys.getswitchinterval() == before
