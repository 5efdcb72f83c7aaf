"""Loopback ports for servers the tests start (mosquitto, RabbitMQ, SMTP, `serve --http`).

A port is known before its server binds it, so something else may take it in between. Two
things keep that rare: ports come from below the kernel's ephemeral range, which outgoing
connections (and `bind(("", 0))` elsewhere) draw from, and each pytest-xdist worker draws from
its own slice of that range, so two workers of one run never pick the same port. Another run
on the same machine may still pick it: servers whose start can fail on a taken port are
retried on a new one by their fixtures (`support.mqtt`, `support.rabbitmq`).
"""

from __future__ import annotations

import os
import random
import socket

#: Never below this: well-known and registered services live there.
LOWEST = 20000
#: Slices for xdist workers (gw0, gw1, ...); the main process uses the last one.
SLICES = 16
#: Not the `random` module's state, which Hypothesis seeds alike in every process.
_draw = random.SystemRandom()


def ephemeral_start() -> int:
    """The first port the kernel hands out for outgoing connections and binds to port 0."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def worker_slice() -> range:
    """The ports this process (an xdist worker, or a run without workers) picks from."""
    top = max(ephemeral_start(), LOWEST + SLICES * 64)
    size = (top - LOWEST) // SLICES
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) % (SLICES - 1) if worker.startswith("gw") else SLICES - 1
    return range(LOWEST + index * size, LOWEST + (index + 1) * size)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port nothing is bound to now, from this worker's slice."""
    ports = worker_slice()
    for _ in range(200):
        port = _draw.choice(ports)
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {ports.start}..{ports.stop - 1}")
