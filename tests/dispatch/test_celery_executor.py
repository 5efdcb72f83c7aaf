"""The Celery executor with real parts: a private RabbitMQ broker and three real
`celery -A qbcallbacks.celery worker` processes, each in its own working directory.

The broker and the workers start once for the module; each test has its own dispatcher,
callback directory and trail. The test that kills a worker comes last."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.dispatch.dispatcher import Dispatcher, DispatcherSettings
from qbcallbacks.dispatch.remote.executor import CeleryExecutor
from qbcallbacks.dispatch.remote.hub import Hub
from qbcallbacks.dispatch.remote.link import DispatcherGone, Link, LinkError
from qbcallbacks.dispatch.remote.wire import RUN_TASK, run_message, script_hash
from qbcallbacks.model.events import Event
from qbcallbacks.reference.memory import MemorySupervisor
from qbcallbacks.runtimes.api import Invocation
from qbcallbacks.stream import ReplayStep, read_events
from support.paths import ROOT
from support.rabbitmq import CeleryWorkers, Relay, wait_for
from support.service import LineClient, served

pytest.importorskip("celery", reason="Celery is not installed (the `celery` extra)")


@pytest.fixture(scope="module")
def workers(rabbitmq_broker: str, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[CeleryWorkers]:
    pool = CeleryWorkers(rabbitmq_broker, tmp_path_factory.mktemp("workers"), 3)
    try:
        yield pool
    finally:
        pool.stop()


def callbacks(root: Path, scripts: dict[str, tuple[str, str]]) -> Path:
    """A callback directory: `name -> (trigger, script text)`, in firing order."""
    root.mkdir(parents=True, exist_ok=True)
    for name, (_, text) in scripts.items():
        (root / name).write_text(text)
    (root / "callbacks.conf").write_text(
        "".join(f"{name} = {trigger}\n" for name, (trigger, _) in scripts.items()))
    return root


def dispatcher(tmp_path: Path, directory: Path, workers: CeleryWorkers,
               supervisor: MemorySupervisor | None = None, **settings: object) -> Dispatcher:
    s = DispatcherSettings(executor="celery", broker=workers.broker, **settings)
    return Dispatcher([str(directory)], supervisor or MemorySupervisor(), settings=s,
                      audit=tmp_path / "audit.db",
                      executor=CeleryExecutor(workers.broker, queue=workers.queue))


WHERE = "import os\nprint('ran in', os.getcwd())\n"
#: A callback that says where it runs, then waits for the test's `release` file.
HOLD = """import os, time, qb
here = {here!r}
open(os.path.join(here, 'started-%d' % os.getpid()), 'w').write(
    '%s %d %d' % (os.getcwd(), os.getpid(), os.getppid()))
end = time.monotonic() + 60
while not os.path.exists(os.path.join(here, 'release')) and time.monotonic() < end:
    time.sleep(0.05)
print('released in', os.getcwd())
"""


def started(here: Path) -> list[list[str]]:
    return [p.read_text().split() for p in sorted(here.glob("started-*")) if p.stat().st_size]


def test_firings_run_on_the_workers_as_replay_predicts_and_are_recorded_once(tmp_path,
                                                                             workers):
    root = callbacks(tmp_path / "cb", {
        "where.py": ("complete-job-self", WHERE),
        "note.qcb": ("done-job-self", "unblock-self\n"),
        "work.py": ("complete-work-self-*", WHERE)})
    events = [{"event": "submit", "type": "job", "job": {"id": j, "label": f"shot{j}"}}
              for j in (1, 2, 3)]
    events += [{"event": "complete", "type": "job", "job": 1},
               {"event": "failed", "type": "job", "job": 2},
              {"event": "complete", "type": "work", "job": 3, "extra": "7"}]
    stream = tmp_path / "events.jsonl"
    stream.write_text("".join(json.dumps(e) + "\n" for e in events))
    done = subprocess.run([sys.executable, "-m", "qbcallbacks", "replay", str(root), "--events",
                           str(stream), "--dry-run", "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    predicted = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(predicted) == 4
    executor = CeleryExecutor(workers.broker, queue=workers.queue)
    s = DispatcherSettings(executor="celery", broker=workers.broker)
    with Dispatcher([str(root)], MemorySupervisor(), settings=s, audit=tmp_path / "audit.db",
                    executor=executor) as d:
        for step in read_events(stream.read_text().splitlines()):
            assert isinstance(step, ReplayStep)
            d.emit(step.event, step.job)
        assert d.wait_idle(60)
        # A late duplicate (a redelivery after the outcome was recorded) changes nothing.
        first = d.audit.query()[0].id
        assert executor.answer({"op": "started", "firing": first, "at": 1.0}) == {"run": False}
        assert executor.answer({"op": "done", "firing": first, "result": {
            "status": "error", "output": "second outcome"}}) == {"recorded": False}
        assert d.wait_idle(10)
        rows = d.audit.query()
    assert [{"seq": r.event_seq, "job": r.job, "callback": r.callback, "trigger": r.trigger}
            for r in rows] == [{k: p[k] for k in ("seq", "job", "callback", "trigger")}
                               for p in predicted]
    assert [(r.status, r.attempts) for r in rows] == [("ok", 1)] * 4
    assert len({r.id for r in rows}) == 4
    worker_dirs = {str(workers.root / f"w{i}") for i in range(3)}
    for row in rows:
        if row.callback.endswith(".py"):
            assert row.output.split()[-1] in worker_dirs, row.output
            assert str(tmp_path) not in row.output


def test_a_worker_tells_a_dispatcher_that_is_gone_from_one_that_is_slow(workers):
    hub = Hub(workers.broker, lambda request: None)  # takes requests, never answers
    hub.start()
    link = Link(workers.broker)
    try:
        with pytest.raises(LinkError, match="did not answer in time"):
            link.request(hub.name, "started", {"firing": 1}, 0.3)
        assert link.dispatcher_alive(hub.name)
        hub.stop()
        wait_for(lambda: not link.dispatcher_alive(hub.name), "the queue to go with its hub")
        assert not link.dispatcher_alive("qbcallbacks.dispatcher.never-was")
        with pytest.raises(DispatcherGone):  # returned by the broker, long before 60 s
            link.request(hub.name, "call", {"method": "jobinfo", "args": []}, 60)
    finally:
        link.close()


def test_runs_whose_dispatcher_is_gone_are_dropped_without_running(tmp_path, workers):
    from celery import Celery

    hub = Hub(workers.broker, lambda request: None)
    hub.start()
    hub.stop()  # its queue goes with it: the dispatcher that sent these runs is gone
    marker = tmp_path / "ran"
    script = tmp_path / "never.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    inv = Invocation(callback="never.py", path=script, job_id=1, timeout=5,
                     event=Event(name="complete", type="job", job=1))
    app = Celery("probe", broker=workers.broker, set_as_current=False)
    try:
        app.send_task(RUN_TASK, queue=workers.queue, args=[run_message(
            901, 1, "py", inv, script_hash(script), hub.name)])
        app.send_task(RUN_TASK, queue=workers.queue, args=[run_message(
            902, 1, "py", inv, "0" * 64, hub.name)])  # refused, and nobody to tell
    finally:
        app.close()
    logs = lambda: "".join(workers.log(i).read_text(errors="replace") for i in range(3))  # noqa: E731
    wait_for(lambda: "firing 901 not run, its dispatcher is gone" in logs(), "the first run")
    wait_for(lambda: "outcome of firing 902 was not recorded, its dispatcher is gone"
             in logs(), "the refusal")
    assert not marker.exists()


ORDER = """import os, random, time, qb
time.sleep(random.uniform(0, 0.25))
with open(os.path.join({here!r}, 'order-%d' % qb.jobid()), 'a') as out:
    out.write('%s %s\\n' % (qb.workid(), os.getcwd()))
"""


def test_a_jobs_firings_run_in_firing_order_across_three_workers(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "order.py": ("complete-work-self-*", ORDER.format(here=str(tmp_path)))})
    jobs, items = (11, 12, 13), [str(i) for i in range(8)]
    with dispatcher(tmp_path, root, workers) as d:
        for item in items:
            for job in jobs:
                d.emit(Event(name="complete", type="work", job=job, extra=item))
        assert d.wait_idle(120)
        rows = d.audit.query()
    assert len(rows) == 24 and {r.status for r in rows} == {"ok"}
    hosts = set()
    for job in jobs:
        lines = (tmp_path / f"order-{job}").read_text().splitlines()
        assert [line.split()[0] for line in lines] == items
        hosts.update(line.split()[1] for line in lines)
    assert len(hosts) >= 2  # the jobs were spread over the workers


def test_a_remote_callbacks_qb_calls_reach_the_supervisor(tmp_path, workers):
    farm = MemorySupervisor()
    job = farm.submit("lighting-v12", status="running")
    info = ("import qb\njob = qb.jobinfo('-id', qb.jobid())[0]\n"
            "print(job['name'], job['status'])\n")
    root = callbacks(tmp_path / "cb", {"info.py": ("complete-work-self-*", info),
                                       "hold.qcb": ("complete-work-self-*", "block-self\n")})
    with dispatcher(tmp_path, root, workers, supervisor=farm) as d:
        d.emit(Event(name="complete", type="work", job=job.id, extra="1"))
        assert d.wait_idle(60)
        rows = d.audit.query()
    assert [(r.callback, r.status) for r in rows] == [("info.py", "ok"), ("hold.qcb", "ok")]
    assert rows[0].output.strip() == "lighting-v12 running"
    assert [(a.action, a.job, a.ok) for a in farm.actions] == [("block", job.id, True)]
    assert farm.job_status(job.id) == "blocked"


def test_a_script_changed_between_match_and_run_is_refused_and_recorded(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "first.py": ("complete-job-self", HOLD.format(here=str(tmp_path))),
        "second.py": ("complete-job-self", "print('original')\n")})
    with dispatcher(tmp_path, root, workers) as d:
        d.emit(Event(name="complete", type="job", job=5))
        wait_for(lambda: started(tmp_path), "the first callback to start")
        (root / "second.py").write_text("print('changed after the match')\n")
        (tmp_path / "release").touch()
        assert d.wait_idle(60)
        rows = d.audit.query()
    assert [(r.callback, r.status) for r in rows] == [("first.py", "ok"), ("second.py", "refused")]
    assert "content hash" in (rows[1].error or "")
    assert rows[1].started_at is None and rows[1].output == ""  # it never ran


def test_a_hanging_callback_is_stopped_at_its_deadline_on_the_worker(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "hang.py": ("complete-job-self", "import time\nwhile True:\n    time.sleep(0.1)\n")})
    with dispatcher(tmp_path, root, workers, rule_timeouts={"hang.py": 1.0}) as d:
        d.emit(Event(name="complete", type="job", job=6))
        assert d.wait_idle(60)
        [row] = d.audit.query()
    assert row.status == "timeout" and row.attempts == 1
    assert "longer than 1s" in (row.error or "")


def test_a_run_whose_worker_hangs_is_killed_by_the_hard_limit_and_recorded_timeout(
        tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "stuck.py": ("complete-job-self", HOLD.format(here=str(tmp_path)))})
    executor = CeleryExecutor(workers.broker, queue=workers.queue, soft_grace=1.0,
                              hard_grace=2.0)
    s = DispatcherSettings(executor="celery", broker=workers.broker,
                           rule_timeouts={"stuck.py": 2.0})
    with Dispatcher([str(root)], MemorySupervisor(), settings=s, audit=tmp_path / "audit.db",
                    executor=executor) as d:
        d.emit(Event(name="complete", type="job", job=7))
        wait_for(lambda: started(tmp_path), "the callback to start")
        pool_child = started(tmp_path)[0][2]
        os.kill(int(pool_child), signal.SIGSTOP)  # the worker process hangs: no deadline
        try:
            assert d.wait_idle(60)
            [row] = d.audit.query()
        finally:
            (tmp_path / "release").touch()
            os.kill(int(pool_child), signal.SIGCONT)
    assert row.status == "timeout" and row.attempts == 1
    assert "hard time limit" in (row.error or "")


def test_close_without_drain_cancels_what_waits_and_lets_the_running_run_finish(
        tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "first.py": ("complete-job-self", HOLD.format(here=str(tmp_path))),
        "second.py": ("complete-job-self", WHERE)})
    executor = CeleryExecutor(workers.broker, queue=workers.queue)
    s = DispatcherSettings(executor="celery", broker=workers.broker)
    d = Dispatcher([str(root)], MemorySupervisor(), settings=s, audit=tmp_path / "audit.db",
                   executor=executor)
    d.emit(Event(name="complete", type="job", job=9))
    wait_for(lambda: started(tmp_path), "the first callback to start")
    closing = threading.Thread(target=d.close, kwargs={"drain": False})
    closing.start()
    wait_for(lambda: executor.waiting == 1, "the waiting firing to be cancelled")
    (tmp_path / "release").touch()
    closing.join(60)
    assert not closing.is_alive()
    assert [(r.callback, r.status) for r in d.audit.query()] == [
        ("first.py", "ok"), ("second.py", "cancelled")]


def test_serve_with_the_celery_executor_has_workers_ask_the_connected_supervisor(
        tmp_path, workers, monkeypatch):
    monkeypatch.setenv("QBCALLBACKS_QUEUE", workers.queue)
    info = ("import qb\nprint(qb.jobinfo('-id', qb.jobid())[0]['name'])\n"
            "import os\nprint(os.getcwd())\n")
    root = callbacks(tmp_path / "cb", {"info.py": ("complete-job-self", info)})
    with served(tmp_path, root, "--executor", "celery", "--broker", workers.broker) as s, \
            LineClient(s.sock, jobs={3: "shot3-from-the-supervisor"}) as client:
        assert client.event(1, 3)["result"] == {"ack": 1}
        assert client.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    assert [m["method"] for m in client.asked] == ["jobinfo"]
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    [row] = audit.query()
    audit.close()
    assert row.status == "ok"
    name, where = row.output.split()
    assert name == "shot3-from-the-supervisor"
    assert Path(where).parent == workers.root


def test_qbconf_sends_the_runs_to_the_workers(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {"where.py": ("complete-job-self", WHERE)})
    conf = tmp_path / "qb.conf"
    conf.write_text(f"supervisor_universal_callback_path = {root}\n"
                    "supervisor_callback_executor = celery\n"
                    f"supervisor_callback_broker = {workers.broker}\n")
    d = Dispatcher.from_qbconf(conf, MemorySupervisor(), audit=tmp_path / "audit.db",
                               executor=CeleryExecutor(workers.broker, queue=workers.queue))
    with d:
        assert (d.settings.executor, d.settings.broker) == ("celery", workers.broker)
        d.emit(Event(name="complete", type="job", job=2))
        assert d.wait_idle(60)
        [row] = d.audit.query()
    assert row.status == "ok" and Path(row.output.split()[-1]).parent == workers.root


def test_a_started_run_whose_outcome_never_comes_is_recorded_timeout(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "frozen.py": ("complete-job-self", HOLD.format(here=str(tmp_path)))})
    executor = CeleryExecutor(workers.broker, queue=workers.queue, soft_grace=0.5,
                              hard_grace=1.0, watch_slack=0.5)
    s = DispatcherSettings(executor="celery", broker=workers.broker,
                           rule_timeouts={"frozen.py": 1.0})
    with Dispatcher([str(root)], MemorySupervisor(), settings=s, audit=tmp_path / "audit.db",
                    executor=executor) as d:
        d.emit(Event(name="complete", type="job", job=10))
        wait_for(lambda: started(tmp_path), "the callback to start")
        worker = workers.procs[int(Path(started(tmp_path)[0][0]).name[1:])]
        assert worker is not None
        os.killpg(worker.pid, signal.SIGSTOP)  # the whole worker freezes: nothing comes back
        try:
            assert d.wait_idle(60)
            [row] = d.audit.query()
        finally:
            (tmp_path / "release").touch()
            os.killpg(worker.pid, signal.SIGCONT)
    assert row.status == "timeout" and "presumed lost" in (row.error or "")


def test_runs_wait_while_the_broker_is_out_of_reach_and_go_when_it_is_back(tmp_path,
                                                                          workers):
    relay = Relay(int(workers.broker.rsplit(":", 1)[1].strip("/")))
    url = f"amqp://guest:guest@127.0.0.1:{relay.port}//"
    root = callbacks(tmp_path / "cb", {"where.py": ("complete-job-self", WHERE),
                                       "then.qcb": ("complete-job-self", "unblock-self\n")})
    executor = CeleryExecutor(url, queue=workers.queue)
    s = DispatcherSettings(executor="celery", broker=url)
    try:
        with Dispatcher([str(root)], MemorySupervisor(), settings=s,
                        audit=tmp_path / "audit.db", executor=executor) as d:
            assert not d.health.ok and "out of reach" in (d.health.problem or "")
            d.emit(Event(name="complete", type="job", job=11))
            wait_for(lambda: executor.waiting == 2, "the firings to reach the executor")
            assert not d.wait_idle(0.5)
            relay.up()
            assert d.wait_idle(60)
            wait_for(lambda: d.health.ok, "health to clear")
            rows = d.audit.query()
    finally:
        relay.close()
    assert [(r.callback, r.status, r.attempts) for r in rows] == [
        ("where.py", "ok", 1), ("then.qcb", "ok", 1)]


def test_a_pool_process_killed_mid_run_has_the_run_given_back_and_recorded_once(tmp_path,
                                                                               workers):
    root = callbacks(tmp_path / "cb", {
        "long.py": ("complete-job-self", HOLD.format(here=str(tmp_path)))})
    with dispatcher(tmp_path, root, workers) as d:
        d.emit(Event(name="complete", type="job", job=12))
        wait_for(lambda: started(tmp_path), "the first attempt to start")
        _, callback_pid, pool_child = started(tmp_path)[0]
        os.kill(int(pool_child), signal.SIGKILL)  # Celery sees its worker process lost
        wait_for(lambda: len(started(tmp_path)) == 2, "the run to be given back and rerun")
        os.kill(int(callback_pid), signal.SIGKILL)  # the first attempt's orphan
        (tmp_path / "release").touch()
        assert d.wait_idle(60)
        [row] = d.audit.query()
    assert (row.status, row.attempts) == ("ok", 2)


def test_a_worker_killed_mid_run_has_the_run_redelivered_and_recorded_once(tmp_path, workers):
    root = callbacks(tmp_path / "cb", {
        "long.py": ("complete-job-self", HOLD.format(here=str(tmp_path))),
        "after.py": ("complete-job-self", WHERE)})
    with dispatcher(tmp_path, root, workers) as d:
        d.emit(Event(name="complete", type="job", job=8))
        wait_for(lambda: started(tmp_path), "the first attempt to start")
        first_dir = started(tmp_path)[0][0]
        workers.kill(int(Path(first_dir).name[1:]))
        wait_for(lambda: len(started(tmp_path)) == 2, "the run to be delivered again")
        second_dir = next(s[0] for s in started(tmp_path) if s[0] != first_dir)
        (tmp_path / "release").touch()
        assert d.wait_idle(60)
        rows = d.audit.query()
    assert [(r.callback, r.status, r.attempts) for r in rows] == [
        ("long.py", "ok", 2), ("after.py", "ok", 1)]
    assert rows[0].output.split()[-1] == second_dir != first_dir
