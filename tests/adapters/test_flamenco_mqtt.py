"""The Flamenco adapter against a real MQTT broker (Debian's mosquitto, started here on a
loopback port): messages in Flamenco's published shape, sent with `mosquitto_pub`, fire the
callbacks the mapping predicts, and an adapter stopped while messages arrive loses none."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qbcallbacks.audit.backends import open_audit
from support.mqtt import (
    MOSQUITTO,
    PUB,
    Broker,
    expected,
    free_port,
    lifecycle,
    publish,
    wait_for,
)

pytestmark = pytest.mark.skipif(MOSQUITTO is None or PUB is None,
                                reason="mosquitto and mosquitto_pub are not installed")

CONF = """\
submitted.py = submit-job-self
finished.py = done-job-self
frame.py = complete-work-self-*
"""


@pytest.fixture
def site(tmp_path):
    cb = tmp_path / "callbacks"
    cb.mkdir()
    (cb / "callbacks.conf").write_text(CONF)
    for name in ("submitted.py", "finished.py", "frame.py"):
        (cb / name).write_text("pass\n")
    return cb


class Adapter:
    """`qbcallbacks adapt flamenco --direct` as a child process."""

    def __init__(self, port: int, site: Path, work: Path) -> None:
        self.args = [sys.executable, "-m", "qbcallbacks", "adapt", "flamenco",
                     "--mqtt", f"mqtt://127.0.0.1:{port}", "--direct", str(site),
                     "--audit", str(work / "audit.db"), "--state", str(work / "state.db"),
                     "--manager", "http://127.0.0.1:9", "--mode", "in-process",
                     "--client-id", "qbcallbacks-test"]
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        log = open(self.work / "adapter.log", "ab")  # noqa: SIM115 - the child keeps it
        before = self.log().count("subscribed to")
        self.proc = subprocess.Popen(self.args, cwd=self.work, stdout=subprocess.DEVNULL,
                                     stderr=log)
        log.close()
        if wait:
            self.wait_subscribed(before)

    def wait_subscribed(self, before: int) -> None:
        """Wait until the log says `subscribed to` more than `before` times."""
        assert self.proc is not None
        wait_for(lambda: self.log().count("subscribed to") > before
                 or self.proc.poll() is not None, "the adapter to subscribe")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return (self.work / "adapter.log").read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self.proc = None
        return code


def firings(work: Path) -> list[tuple[str, str]]:
    db = work / "audit.db"
    if not db.exists():
        return []
    store = open_audit(db, readonly=True)
    try:
        return sorted((r.callback, r.event.format()) for r in store.query()
                      if r.status == "ok")
    finally:
        store.close()


def test_flamenco_updates_fire_the_predicted_callbacks(broker, site, tmp_path) -> None:
    adapter = Adapter(broker, site, tmp_path)
    adapter.start()
    lifecycle(broker, "aaaa0001-0000-4000-8000-000000000001")
    lifecycle(broker, "bbbb0002-0000-4000-8000-000000000002")
    # Hostile messages are skipped and do not stop what follows.
    publish(broker, "flamenco/jobs", {"id": 7})
    subprocess.run([PUB, "-p", str(broker), "-q", "1", "-t", "flamenco/jobs", "-m", "\xff{"],
                   check=True, timeout=30)
    lifecycle(broker, "cccc0003-0000-4000-8000-000000000003", frames=1)
    want = sorted(expected(1) + expected(2) + expected(3, frames=1))
    wait_for(lambda: len(firings(tmp_path)) >= len(want), "the firings")
    assert adapter.stop() == 0
    assert firings(tmp_path) == want
    assert "2 skipped" in adapter.log()


def test_an_adapter_stopped_while_messages_arrive_loses_nothing(broker, site, tmp_path) -> None:
    adapter = Adapter(broker, site, tmp_path)
    adapter.start()  # the broker now keeps a session for the adapter's client id
    lifecycle(broker, "dddd0001-0000-4000-8000-000000000001")
    assert adapter.stop() == 0
    lifecycle(broker, "eeee0002-0000-4000-8000-000000000002")  # published while it is down
    adapter.start()
    lifecycle(broker, "ffff0003-0000-4000-8000-000000000003")
    # Killed outright in the middle of a stream, then started again.
    adapter.stop(signal.SIGKILL)
    lifecycle(broker, "abab0004-0000-4000-8000-000000000004")
    adapter.start()
    want = sorted(expected(1) + expected(2) + expected(3) + expected(4))
    wait_for(lambda: len(firings(tmp_path)) >= len(want), "the firings")
    assert adapter.stop() == 0
    assert firings(tmp_path) == want


def test_the_adapter_waits_for_a_broker_that_is_down_and_one_that_restarts(site, tmp_path):
    port = free_port()
    adapter = Adapter(port, site, tmp_path)
    adapter.start(wait=False)  # nothing listens yet: the adapter keeps trying
    broker = Broker(port, tmp_path)
    try:
        adapter.wait_subscribed(0)
        lifecycle(port, "aaaa0001-0000-4000-8000-000000000001")
        wait_for(lambda: len(firings(tmp_path)) >= 4, "the first job's firings")
        broker.stop()
        broker = Broker(port, tmp_path)  # a restart: the adapter connects and subscribes again
        adapter.wait_subscribed(1)
        lifecycle(port, "bbbb0002-0000-4000-8000-000000000002")
        wait_for(lambda: len(firings(tmp_path)) >= 8, "the second job's firings")
        assert adapter.stop() == 0
    finally:
        broker.stop()
        if adapter.proc is not None:
            adapter.stop(signal.SIGKILL)
    assert firings(tmp_path) == sorted(expected(1) + expected(2))
