"""Run marks: a local, append-only record that a run is about to start, for a trail a round
trip away (`audit.pgstore` with its local journal).

A run's attempt must be durable before the run starts, so that a run that kills the host is
known on restart. A line appended here (`firing id<TAB>attempt<TAB>started at<TAB>.`, the
dot marking a whole line) is in the kernel's page cache when `append` returns, which a killed
process cannot undo: the same durability as the event journal, without a round trip per run.
The store ships the marks to the trail with its next batch or flush, as absolute attempt
numbers (shipping twice changes nothing), and empties the file once everything appended was
shipped; a store that opens the trail after a kill ships what the file still holds before it
reads any attempt.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from .store import AuditError

Mark = tuple[int, int, float]  # firing id, attempt number, started at


class RunMarks:
    """The marks file of one trail (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[Mark] = []  # appended, not yet shipped
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                os.write(self._fd, b"\n")  # end a line torn by a kill: it stays unreadable
        except OSError as exc:
            raise AuditError(f"cannot open the run marks {path}: {exc}") from exc

    def left_over(self) -> list[Mark]:
        """The complete lines the file holds (what a killed host appended and never shipped)."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        out = []
        for line in data.split(b"\n")[:-1]:  # what follows the last newline is torn
            with contextlib.suppress(ValueError):
                fid, attempt, started, end = line.split(b"\t")
                if end == b".":  # a whole line, not the head of a torn one
                    out.append((int(fid), int(attempt), float(started)))
        return out

    def append(self, mark: Mark) -> None:
        line = f"{mark[0]}\t{mark[1]}\t{mark[2]!r}\t.\n".encode()
        with self._lock:
            try:
                os.write(self._fd, line)
            except OSError as exc:
                raise AuditError(f"cannot write the run marks {self.path}: {exc}") from exc
            self._pending.append(mark)

    def unshipped(self) -> list[Mark]:
        with self._lock:
            return list(self._pending)

    def shipped(self, count: int) -> None:
        """The first `count` unshipped marks are in the trail; empty the file when nothing
        else waits."""
        with self._lock:
            del self._pending[:count]
            if not self._pending:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
