"""The adapter live against a real mosquitto and a stand-in Manager that runs the Manager's
state machine and publishes through a forwarder like the Manager's (10 messages kept while it
cannot publish): each misfire seen against the real Manager, as the scenario that showed it."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from qbcallbacks.adapters.flamenco import bridge as bridge_module
from qbcallbacks.adapters.flamenco.api import ManagerAPI
from qbcallbacks.adapters.flamenco.bridge import Broker, FlamencoBridge
from qbcallbacks.adapters.flamenco.state import AdapterState
from qbcallbacks.stream import BadLine, read_events
from support.flamenco_manager import StandInManager
from support.flamenco_payloads import new_job_update
from support.mqtt import MOSQUITTO, PUB, wait_for

pytestmark = pytest.mark.skipif(MOSQUITTO is None or PUB is None,
                                reason="mosquitto and mosquitto_pub are not installed")


class Recorder:
    """A sink that keeps the events it is given, as `event-type-job[-work]` text."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.seqs: list[int] = []

    def deliver(self, seq: int, line: dict[str, Any]) -> None:
        (step,) = list(read_events([json.dumps(line)]))
        assert not isinstance(step, BadLine), step
        self.seqs.append(seq)
        self.events.append(step.event.format())

    def close(self) -> None:
        pass


@contextmanager
def adapter(port: int, manager: StandInManager, work: Path, *, prefix: str = "flamenco",
            every: float = 300.0) -> Iterator[tuple[FlamencoBridge, Recorder]]:
    """The adapter in a thread, subscribed and reconciled once when this yields."""
    state = AdapterState(work / "state.db")
    api = ManagerAPI(manager.url, connect_timeout=2, read_timeout=5, backoff=0.02)
    sink = Recorder()
    ready = threading.Event()
    bridge = FlamencoBridge(Broker("127.0.0.1", port, False, None, None), sink, state, api,
                            prefix=prefix, client_id="qbcallbacks-live", retry_max=0.5,
                            reconcile_every=every, on_ready=ready.set)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "the adapter did not subscribe"
        wait_for(lambda: bridge.reconciliations > 0, "the first reconciliation")
        yield bridge, sink
    finally:
        bridge.stop()
        thread.join(60)
        api.close()
        state.close()


def settle(manager: StandInManager, sink: Recorder, count: int) -> list[str]:
    manager.forwarder.drain()
    wait_for(lambda: len(sink.events) >= count, f"{count} events")
    return sink.events


@pytest.fixture
def manager(broker) -> Iterator[StandInManager]:
    m = StandInManager(broker)
    yield m
    m.close()


def test_a_deleted_job_is_removed_once_and_dropped(broker, manager, tmp_path) -> None:
    with adapter(broker, manager, tmp_path) as (bridge, sink):
        job = manager.machine.submit("shot", tasks=1)
        manager.machine.run(job.uuid)
        manager.machine.delete(job.uuid)
        events = settle(manager, sink, 6)
        assert events.count("removed-job-1") == 1 and events[-1] == "removed-job-1"
        assert bridge.state.job_uuid(1) is None
        bridge.reconcile_soon()  # a later reconciliation does not raise it again
        wait_for(lambda: bridge.reconciliations > 1, "a reconciliation")
        assert sink.events.count("removed-job-1") == 1


def test_job_and_work_events_fire_once_per_change(broker, manager, tmp_path) -> None:
    with adapter(broker, manager, tmp_path) as (_, sink):
        job = manager.machine.submit("shot", tasks=2)
        manager.machine.run(job.uuid)  # progress: updates without previous_status
        manager.machine.set_priority(job.uuid, 90)
        events = settle(manager, sink, 7)
    assert sink.seqs == list(range(sink.seqs[0], sink.seqs[0] + 7))  # numbered once, in order
    assert events == ["submit-job-1", "running-work-1-render-0", "running-job-1",
                      "complete-work-1-render-0", "running-work-1-render-1",
                      "complete-work-1-render-1", "complete-job-1"]


def test_bulk_task_changes_raise_their_work_events(broker, manager, tmp_path) -> None:
    with adapter(broker, manager, tmp_path) as (_, sink):
        job = manager.machine.submit("shot", tasks=3)
        manager.machine.task_status_change(job.tasks[0], "active")
        manager.machine.job_status_change(job.uuid, "cancel-requested")
        events = settle(manager, sink, 7)
    assert sorted(events[3:6]) == ["killed-work-1-render-0", "killed-work-1-render-1",
                                   "killed-work-1-render-2"]
    assert events[-1] == "killed-job-1"


def test_changes_the_forwarder_dropped_are_raised_once(broker, manager, tmp_path) -> None:
    with adapter(broker, manager, tmp_path, every=1.0) as (_, sink):
        first = manager.machine.submit("first", tasks=1)
        settle(manager, sink, 1)
        manager.forwarder.disconnect()  # the Manager loses the broker
        jobs = [manager.machine.submit(f"job{n}", tasks=2) for n in range(4)]
        for job in [first, *jobs]:
            manager.machine.run(job.uuid)
        assert manager.forwarder.dropped > 0
        manager.forwarder.reconnect()
        want = 5 + (1 + 4 * 2) + 5  # submits, completed tasks, completed jobs
        wait_for(lambda: sum(e.startswith(("submit", "complete")) for e in sink.events)
                 >= want, "the dropped changes")
        manager.forwarder.drain()  # the 10 stale messages it kept arrive now
        manager.machine.submit("sentinel", tasks=1)  # handled after all of them, in order
        wait_for(lambda: "submit-job-6" in sink.events, "the sentinel")
    done = [e for e in sink.events if e.startswith(("submit", "complete"))]
    assert len(done) == want + 1 and len(set(done)) == want + 1


def test_a_poison_message_is_kept_aside_and_the_rest_goes_on(broker, manager, tmp_path):
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="poisoner")
    publisher.connect("127.0.0.1", broker)
    publisher.loop_start()
    with adapter(broker, manager, tmp_path) as (bridge, sink):
        poison = b'{"id": "\\ud800", "status": "active"}'
        publisher.publish("flamenco/jobs", poison, qos=1).wait_for_publish(30)
        job = manager.machine.submit("after", tasks=1)
        settle(manager, sink, 1)
        (letter,) = bridge.state.dead_letters()
    publisher.disconnect()
    publisher.loop_stop()
    assert (letter.topic, letter.payload) == ("flamenco/jobs", poison)
    assert sink.events == ["submit-job-1"] and job.name == "after"


def test_the_prefix_is_used_as_written(broker, tmp_path) -> None:
    manager = StandInManager(broker, prefix="flamenco/")
    try:
        with adapter(broker, manager, tmp_path, prefix="flamenco/") as (bridge, sink):
            assert bridge.topics == ("flamenco//jobs", "flamenco//jobs/+")
            manager.machine.submit("shot", tasks=1)
            assert settle(manager, sink, 1) == ["submit-job-1"]
            assert manager.forwarder.sent[0][0] == "flamenco//jobs"
    finally:
        manager.close()


def test_a_manager_blip_during_a_task_refresh_is_retried(broker, manager, tmp_path) -> None:
    with adapter(broker, manager, tmp_path) as (_, sink):
        job = manager.machine.submit("shot", tasks=2)
        settle(manager, sink, 1)
        manager.blips = 2  # the refresh's first two connections drop
        manager.machine.job_status_change(job.uuid, "pause-requested")
        events = settle(manager, sink, 4)
    assert sorted(events[1:3]) == ["blocked-work-1-render-0", "blocked-work-1-render-1"]
    assert events[3] == "blocked-job-1" and manager.blips == 0


def test_a_message_that_keeps_killing_the_adapter_is_kept_aside(broker, manager, tmp_path):
    job = manager.machine.submit("shot", tasks=1)  # published before anyone listens
    payload = json.dumps(new_job_update(job)).encode()
    key = hashlib.sha256(b"flamenco/jobs\0" + payload).hexdigest()
    state = AdapterState(tmp_path / "state.db")
    for _ in range(3):  # three runs died on it before they could finish it
        state.attempt(key)
    state.close()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="replayer")
    publisher.connect("127.0.0.1", broker)
    publisher.loop_start()
    with adapter(broker, manager, tmp_path) as (bridge, sink):
        publisher.publish("flamenco/jobs", payload, qos=1).wait_for_publish(30)
        wait_for(lambda: bridge.dead == 1, "the message kept aside")
        (letter,) = bridge.state.dead_letters()
        manager.machine.submit("next", tasks=1)
        wait_for(lambda: "submit-job-2" in sink.events, "the next job")
    publisher.disconnect()
    publisher.loop_stop()
    assert "attempted 3 times" in letter.reason
    # The first job existed before the adapter's first start: taken as it was, not raised.
    assert sink.events == ["submit-job-2"]


def test_a_fault_on_one_message_does_not_stop_the_next(broker, manager, tmp_path,
                                                       monkeypatch) -> None:
    real = bridge_module.apply_job_update
    faults = []

    def once(state, update, tasks):
        if update.name == "cursed" and not faults:
            faults.append(update.id)
            raise RuntimeError("a bug in the adapter")
        return real(state, update, tasks)

    monkeypatch.setattr(bridge_module, "apply_job_update", once)
    with adapter(broker, manager, tmp_path) as (bridge, sink):
        manager.machine.submit("cursed", tasks=1)
        manager.machine.submit("fine", tasks=1)
        wait_for(lambda: "submit-job-1" in sink.events, "the next job")
        (letter,) = bridge.state.dead_letters()
    assert "RuntimeError" in letter.reason and faults
