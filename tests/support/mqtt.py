"""A real MQTT broker for the tests (Debian's mosquitto on a loopback port, in a temporary
directory, stopped at the end) and Flamenco-shaped messages published with `mosquitto_pub`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

import pytest

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
PUB = shutil.which("mosquitto_pub")


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


class Broker:
    """A mosquitto on `port` (loopback), configured in `directory`; `stop()` ends it."""

    def __init__(self, port: int, directory) -> None:
        self.port = port
        conf = directory / f"mosquitto-{port}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 10000\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for(self._listening, "mosquitto to listen")

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            assert self.proc.poll() is None, (
                self.proc.stderr.read().decode() if self.proc.stderr else "")
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()


def need_mosquitto() -> None:
    if MOSQUITTO is None or PUB is None:
        pytest.skip("mosquitto and mosquitto_pub are not installed (Debian: mosquitto, "
                    "mosquitto-clients)")


@pytest.fixture
def broker(tmp_path):
    """A mosquitto listening on a loopback port; yields the port."""
    need_mosquitto()
    running = Broker(free_port(), tmp_path)
    yield running.port
    running.stop()


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


