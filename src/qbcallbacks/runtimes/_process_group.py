"""The processes a run started, told from those it found: what a timed-out run leaves behind
is killed, and programs earlier runs left in the background are spared.

A worker leads its own process group; Linux's /proc tells each member's parent and start
time, so the members started since the run began (and not descended from the worker's
children of before) are the run's. Without /proc the whole group is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that /proc uses for a process's start time."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS_PER_SECOND)


def children(pid: int) -> frozenset[int]:
    """The direct children of `pid`'s main thread now (empty when /proc cannot tell).

    Read before every run: with plain descriptor calls, as a file object costs more than
    the read."""
    try:
        fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return frozenset()
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        data = b"".join(chunks)
        return frozenset(int(x) for x in data.split()) if data else frozenset()
    except (OSError, ValueError):
        return frozenset()
    finally:
        os.close(fd)


def _group(pgid: int) -> dict[int, tuple[int, int]] | None:
    """Members of process group `pgid`: pid -> (parent pid, start tick); None without /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    out: dict[int, tuple[int, int]] = {}
    for name in entries:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        finally:
            os.close(fd)
        if int(fields[2]) == pgid:
            out[int(name)] = (int(fields[1]), int(fields[19]))
    return out


def started_since(pgid: int, ticks: int, spared: frozenset[int]) -> list[int]:
    """Members of process group `pgid` the current run started: not started before `ticks`,
    not one of the worker's children from before the run (`spared`) nor their descendants.
    Without /proc, the whole group is signalled."""
    group = _group(pgid)
    if group is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return []

    def earlier(pid: int) -> bool:
        seen = 0
        while pid in group and pid != pgid and seen < 64:  # up to the worker, not beyond
            parent, start = group[pid]
            if pid in spared or start < ticks:
                return True
            pid, seen = parent, seen + 1
        return pid in spared

    return [pid for pid in group if pid != pgid and not earlier(pid)]
