"""A real MQTT broker for the tests (Debian's mosquitto on a loopback port, in a temporary
directory, stopped at the end). Flamenco's messages come from the stand-in Manager
(`support.flamenco_manager`), in the shapes the Manager's code sends."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time

import pytest

from support.ports import free_port

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
PUB = shutil.which("mosquitto_pub")


def wait_for(check, what: str, limit: float = 60.0) -> None:
    """Poll `check` until it is true; a test that waits longer than `limit` fails."""
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class PortTaken(OSError):
    """Something else bound the broker's port between its choice and mosquitto's start."""


class Broker:
    """A mosquitto on `port` (loopback), configured in `directory`; `stop()` ends it.

    It is up once its log says it runs (so a test never talks to another program that took
    the port); `PortTaken` says the port was taken first."""

    def __init__(self, port: int, directory) -> None:
        self.port = port
        conf = directory / f"mosquitto-{port}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_queued_messages 10000\n")
        self.log = directory / f"mosquitto-{port}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)],
                                         stdout=subprocess.DEVNULL, stderr=out)
        wait_for(self._running, "mosquitto to listen")

    def _running(self) -> bool:
        text = self.log.read_text(errors="replace")
        if self.proc.poll() is not None:
            if "Address already in use" in text:
                raise PortTaken(f"port {self.port} was taken before mosquitto bound it")
            raise AssertionError(f"mosquitto exited: {text}")
        return " running" in text

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def need_mosquitto() -> None:
    if MOSQUITTO is None or PUB is None:
        pytest.skip("mosquitto and mosquitto_pub are not installed (Debian: mosquitto, "
                    "mosquitto-clients)")


def start_broker(directory, tries: int = 5) -> Broker:
    """A mosquitto on a free port, trying another one while the chosen port gets taken."""
    for _ in range(tries - 1):
        with contextlib.suppress(PortTaken):
            return Broker(free_port(), directory)
    return Broker(free_port(), directory)


@pytest.fixture
def broker(tmp_path):
    """A mosquitto listening on a loopback port; yields the port."""
    need_mosquitto()
    running = start_broker(tmp_path)
    yield running.port
    running.stop()
