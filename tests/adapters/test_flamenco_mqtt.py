"""`qbcallbacks adapt flamenco` as a process, against a real mosquitto, a stand-in Manager
(the Manager's state machine and forwarder) and `qbcallbacks serve`: killed and restarted
while the farm keeps changing and the forwarder drops messages, it raises every change once;
a poison message is kept aside and the 300 messages behind it are handled."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.audit.backends import open_audit
from support.flamenco_manager import StandInManager
from support.flamenco_statemachine import StateMachine
from support.mqtt import MOSQUITTO, PUB, Broker, free_port, wait_for

pytestmark = pytest.mark.skipif(MOSQUITTO is None or PUB is None,
                                reason="mosquitto and mosquitto_pub are not installed")

CALLBACKS = {"submitted.py": "submit-job-self", "finished.py": "done-job-self",
             "frame.py": "complete-work-self-*", "killed.py": "killed-work-self-*",
             "gone.py": "removed-job-self"}


class Farm:
    """`qbcallbacks serve` and the adapter feeding it, as child processes in `work`."""

    def __init__(self, port: int, manager_url: str, work: Path) -> None:
        self.work = work
        site = work / "callbacks"
        site.mkdir()
        (site / "callbacks.conf").write_text(
            "".join(f"{name} = {trigger}\n" for name, trigger in CALLBACKS.items()))
        for name in CALLBACKS:
            (site / name).write_text("pass\n")
        self.sock = work / "svc.sock"
        self.serve = self._child(["serve", str(site), "--listen", f"unix:{self.sock}",
                                  "--audit", str(work / "audit.db"), "--workdir",
                                  str(work / "run"), "--mode", "in-process"], "serve")
        wait_for(lambda: self.sock.exists() or self.serve.poll() is not None, "the service")
        self.args = ["adapt", "flamenco", "--mqtt", f"mqtt://127.0.0.1:{port}", "--service",
                     f"unix:{self.sock}", "--manager", manager_url, "--state",
                     str(work / "state.db"), "--client-id", "qbcallbacks-test",
                     "--reconcile-every", "1"]
        self.adapter: subprocess.Popen[bytes] | None = None

    def _child(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with open(self.work / f"{name}.log", "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "qbcallbacks", *args],
                                    stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        path = self.work / "adapt.log"
        return path.read_text() if path.exists() else ""

    def start(self, *, wait: bool = True) -> None:
        before = self.log().count("subscribed to")
        self.adapter = self._child(self.args, "adapt")
        if wait:
            self.wait_subscribed(before)

    def wait_subscribed(self, before: int) -> None:
        adapter = self.adapter
        assert adapter is not None
        wait_for(lambda: self.log().count("subscribed to") > before
                 or adapter.poll() is not None, "the adapter to subscribe")
        assert adapter.poll() is None, self.log()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.adapter is not None
        self.adapter.send_signal(sig)
        code = self.adapter.wait(60)
        self.adapter = None
        return code

    def close(self) -> None:
        if self.adapter is not None:
            self.stop(signal.SIGKILL)
        self.serve.send_signal(signal.SIGTERM)
        self.serve.wait(60)

    def firings(self) -> collections.Counter[tuple[str, str]]:
        db = self.work / "audit.db"
        if not db.exists():
            return collections.Counter()
        store = open_audit(db, readonly=True)
        try:
            return collections.Counter((r.callback, r.event.format()) for r in store.query())
        finally:
            store.close()


@pytest.fixture
def farm(broker, tmp_path) -> Iterator[tuple[Farm, StandInManager]]:
    manager = StandInManager(broker)
    running = Farm(broker, manager.url, tmp_path)
    yield running, manager
    running.close()
    manager.close()


def work_jobs(machine: StateMachine, names: list[str]) -> None:
    """Each job's tasks run; every third job is canceled after its first task."""
    for name in names:
        job = machine.submit(name, tasks=2)
        if int(name[3:]) % 3 == 2:
            machine.task_status_change(job.tasks[0], "active")
            machine.task_status_change(job.tasks[0], "completed")
            machine.job_status_change(job.uuid, "cancel-requested")
        else:
            machine.run(job.uuid)


def ends(machine: StateMachine) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each job's status and its tasks' (name, status), as the farm left them."""
    return {uuid: (job.status, [(machine.tasks[t].name, machine.tasks[t].status)
                                for t in job.tasks]) for uuid, job in machine.jobs.items()}


def expected(final: dict[str, tuple[str, list[tuple[str, str]]]], numbers: dict[str, int],
             deleted: set[str]) -> collections.Counter[tuple[str, str]]:
    """Every change the farm made, once: submissions, task and job ends, deletions."""
    name = {"completed": ("frame.py", "complete"), "canceled": ("killed.py", "killed")}
    want: collections.Counter[tuple[str, str]] = collections.Counter()
    for uuid, (status, tasks) in final.items():
        number = numbers[uuid]
        want[("submitted.py", f"submit-job-{number}")] += 1
        want[("finished.py", f"{name[status][1]}-job-{number}")] += 1
        for task, task_status in tasks:
            script, event = name[task_status]
            want[(script, f"{event}-work-{number}-{task}")] += 1
        if uuid in deleted:
            want[("gone.py", f"removed-job-{number}")] += 1
    return want


def test_a_killed_and_restarted_adapter_raises_every_change_once(farm) -> None:
    running, manager = farm
    machine = manager.machine
    running.start()
    for phase in range(3):
        work_jobs(machine, [f"job{n}" for n in range(4 * phase, 4 * phase + 2)])
        if phase:  # killed while it works through a burst, or once it has caught up
            wait_for(lambda least=2 * phase: sum(running.firings().values()) > least,
                     "some firings")
        running.stop(signal.SIGKILL)
        manager.forwarder.disconnect()  # the Manager loses the broker: it drops messages
        work_jobs(machine, [f"job{n}" for n in range(4 * phase + 2, 4 * phase + 4)])
        assert manager.forwarder.dropped > 0
        manager.forwarder.reconnect()
        running.start()
    uuids = list(machine.jobs)
    wait_for(lambda: sum(n for (script, _), n in running.firings().items()
                         if script == "finished.py") >= len(uuids), "the jobs' ends", limit=120)
    final = ends(machine)
    deleted = set(uuids[:3])
    for uuid in deleted:  # deletions while it is killed again
        machine.delete(uuid)
    running.stop(signal.SIGKILL)
    running.start()
    manager.forwarder.drain()
    numbers = known_jobs(running.work / "state.db")
    assert set(numbers) == set(uuids)  # the jobs' ends were raised: all are known
    want = expected(final, numbers, deleted)
    wait_for(lambda: not want - running.firings(), "every change", limit=120)
    assert running.stop() == 0
    assert running.firings() == want


def test_a_poison_message_does_not_stop_the_300_behind_it(farm) -> None:
    running, manager = farm
    running.start()
    assert running.stop() == 0  # the broker now keeps a session for the adapter
    manager.down = True  # the API is down: what is raised comes from the messages alone
    shapes: list[tuple[str, dict]] = []
    offline = StateMachine(lambda topic, payload: shapes.append((topic, payload)))
    for n in range(300):
        offline.submit(f"good{n}", tasks=1)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="poisoner")
    publisher.connect("127.0.0.1", running_port(running))
    publisher.loop_start()
    poison = b'{"id": "\\ud800", "status": "active"}'
    publisher.publish("flamenco/jobs", poison, qos=1).wait_for_publish(30)
    for topic, payload in shapes:
        publisher.publish("flamenco" + topic, json.dumps(payload), qos=1).wait_for_publish(30)
    publisher.disconnect()
    publisher.loop_stop()
    for _ in range(2):  # it survives restarts: the poison is not delivered again
        running.start()
        wait_for(lambda: len(running.firings()) >= 300, "the 300 submissions", limit=120)
        assert running.stop() == 0
    assert sorted(running.firings().values()) == [1] * 300
    assert "1 kept aside" in running.log() and "0 kept aside" in running.log()
    shown = subprocess.run([sys.executable, "-m", "qbcallbacks", "adapt", "flamenco",
                            "--state", str(running.work / "state.db"), "--dead-letters"],
                           capture_output=True, text=True, check=True, timeout=60)
    (letter,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert letter["topic"] == "flamenco/jobs" and letter["payload"] == poison.decode()
    assert "not JSON text" in letter["reason"]


def known_jobs(path: Path) -> dict[str, int]:
    state = AdapterState(path)
    try:
        return {uuid: number for number, uuid in state.jobs()}
    finally:
        state.close()


def running_port(running: Farm) -> int:
    return int(running.args[3].rsplit(":", 1)[1])


def test_the_adapter_waits_for_a_broker_that_is_down_and_one_that_restarts(tmp_path):
    port = free_port()
    manager = StandInManager(port)  # its forwarder too waits for the broker
    running = Farm(port, manager.url, tmp_path)
    running.start(wait=False)  # nothing listens yet: the adapter keeps trying
    broker = Broker(port, tmp_path)
    try:
        running.wait_subscribed(0)
        manager.machine.submit("first", tasks=1)
        wait_for(lambda: len(running.firings()) >= 1, "the first job's submission")
        broker.stop()
        broker = Broker(port, tmp_path)  # a restart: the adapter subscribes and reconciles
        running.wait_subscribed(1)
        manager.machine.submit("second", tasks=1)
        wait_for(lambda: len(running.firings()) >= 2, "the second job's submission")
        assert running.stop() == 0
    finally:
        running.close()
        broker.stop()
        manager.close()
    assert sorted(running.firings()) == [("submitted.py", "submit-job-1"),
                                         ("submitted.py", "submit-job-2")]
