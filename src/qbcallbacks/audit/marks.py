"""Run marks: a local, append-only record that a run is about to start, kept next to the
local journal of either trail (`audit.sql` uses it unless commits must reach the disk).

A run's attempt must be durable before the run starts, so that a run that kills the host is
known on restart. A line appended here (`firing id<TAB>attempt<TAB>started at<TAB>.`, the
dot marking a whole line) is in the kernel's page cache when `append` returns, which a killed
process cannot undo: the same durability as the event journal, without a round trip per run.
The store ships the marks to the trail with its next batch or flush, as absolute attempt
numbers (shipping twice changes nothing), and empties the file once everything appended was
shipped; a store that opens the trail after a kill ships what the file still holds before it
reads any attempt. A commit per run would cost a transaction (SQLite) or a round trip
(PostgreSQL) on the run's thread, under the lock the matcher thread's batches need.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from .store import AuditError

Mark = tuple[int, int, float]  # firing id, attempt number, started at


class RunMarks:
    """The marks file of one trail (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: list[Mark] = []  # appended, not yet shipped
        self._taken = 0  # of those, how many the write under way carries
        #: Attempts known of firings about to run (orphans read back, runs started).
        self._attempts: dict[int, int] = {}
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

    def start(self, firing_id: int, started_at: float) -> int:
        """Mark a run's attempt (durable when this returns); the attempts so far, this one
        included."""
        with self._lock:
            attempt = self._attempts.get(firing_id, 0) + 1
            self._attempts[firing_id] = attempt
        self.append((firing_id, attempt, started_at))
        return attempt

    def learn(self, attempts: Iterable[tuple[int, int]]) -> None:
        """The attempts the trail holds of firings read back to run again."""
        with self._lock:
            self._attempts.update((fid, n) for fid, n in attempts if n)

    def forget(self, firing_id: int) -> None:
        """The firing ended: its attempts are the trail's business again."""
        with self._lock:
            self._attempts.pop(firing_id, None)

    def unshipped(self) -> list[Mark]:
        with self._lock:
            return list(self._pending)

    def take(self) -> list[Mark]:
        """The unshipped marks, for a write whose commit ends with `sent`."""
        with self._lock:
            self._taken = len(self._pending)
            return self._pending[:self._taken]

    def sent(self) -> None:
        """The marks the last `take` gave are in the trail."""
        with self._lock:
            count, self._taken = self._taken, 0
        self.shipped(count)

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
