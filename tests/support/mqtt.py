"""A real MQTT broker for the tests (Debian's mosquitto on a loopback port, in a temporary
directory, stopped at the end). Flamenco's messages come from the stand-in Manager
(`support.flamenco_manager`), in the shapes the Manager's code sends."""

from __future__ import annotations

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
