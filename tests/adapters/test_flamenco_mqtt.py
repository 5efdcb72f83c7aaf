"""The Flamenco adapter against a real MQTT broker (Debian's mosquitto, started here on a
loopback port): messages in Flamenco's published shape, sent with `mosquitto_pub`, fire the
callbacks the mapping predicts, and an adapter stopped while messages arrive loses none."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbcallbacks.audit.store import AuditStore

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
PUB = shutil.which("mosquitto_pub")
pytestmark = pytest.mark.skipif(MOSQUITTO is None or PUB is None,
                                reason="mosquitto and mosquitto_pub are not installed")

CONF = """\
submitted.py = submit-job-self
finished.py = done-job-self
frame.py = complete-work-self-*
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, what: str, limit: float = 60.0) -> None:
    """Poll `check` until it is true; a test that waits longer than `limit` fails."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 10000\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            return False

    wait_for(listening, "mosquitto to listen")
    yield port
    proc.terminate()
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()


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

    def start(self) -> None:
        log = open(self.work / "adapter.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(self.args, cwd=self.work, stdout=subprocess.DEVNULL,
                                     stderr=log)
        log.close()
        start = (self.work / "adapter.log").read_text().count("subscribed to")
        wait_for(lambda: self.log().count("subscribed to") > start or self.proc.poll() is not None,
                 "the adapter to subscribe")
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
    store = AuditStore(db, readonly=True)
    try:
        return sorted((r.callback, r.event.format()) for r in store.query()
                      if r.status == "ok")
    finally:
        store.close()


def publish(port: int, topic: str, payload: dict) -> None:
    subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic,
                    "-m", json.dumps(payload)], check=True, timeout=30)


def lifecycle(port: int, uuid: str, frames: int = 2) -> None:
    """A job's updates as Flamenco publishes them: created, active, its tasks, completed."""
    def job(status: str, previous: str | None, n: int) -> dict:
        data = {"id": uuid, "name": f"job {uuid[:4]}", "updated": f"2026-01-01T00:00:0{n}Z",
                "status": status, "type": "simple-blender-render", "priority": 50,
                "refresh_tasks": False}
        if previous:
            data["previous_status"] = previous
        return data

    publish(port, "flamenco/jobs", job("queued", None, 0))
    publish(port, "flamenco/jobs", job("active", "queued", 1))
    for frame in range(frames):
        publish(port, f"flamenco/jobs/{uuid}", {
            "id": f"{uuid[:8]}-task-{frame}", "job_id": uuid, "name": f"render-{frame}",
            "updated": "2026-01-01T00:00:02Z", "status": "completed",
            "previous_status": "active", "activity": "done"})
    publish(port, "flamenco/jobs", job("completed", "active", 3))


def expected(number: int, frames: int = 2) -> list[tuple[str, str]]:
    return [("submitted.py", f"submit-job-{number}"), ("finished.py", f"complete-job-{number}"),
            *[("frame.py", f"complete-work-{number}-render-{f}") for f in range(frames)]]


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
