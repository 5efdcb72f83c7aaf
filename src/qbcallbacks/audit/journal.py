"""The event journal: `emit` appends here before it returns, so an accepted event survives.

An append-only file of segments next to the audit database (`<db>.events/000001.log`, ...).
Each line is one event: `seq<TAB>[name, type, job, extra]<TAB>job JSON or null`. One
`os.write` per event puts the line in the kernel's page cache, which a killed process cannot
undo: that is durability against a killed host, at the cost of a system call (a few
microseconds). With `fsync=True` each `append` also waits until the line is on disk; appends
that arrive while a sync is under way share the next one (group commit), so the cost is paid
once per group, not per event.

The audit trail records, in the same transaction as a batch's firings, the position after the
batch's last event (`AuditStore.record_batch`); on restart `read_from` that position gives the
events accepted but not yet matched. Segments wholly before that position are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import QbCallbacksError
from ..model.events import Event


class JournalError(QbCallbacksError):
    """The journal cannot be written: the event was not accepted."""


class Position(NamedTuple):
    """A place in the journal: a segment number and a byte offset in it."""

    segment: int
    offset: int


class JournalEntry(NamedTuple):
    """One journalled event and the position just after it."""

    seq: int
    event: Event
    job_json: str | None
    end: Position


_SEGMENT_BYTES = 64 * 1024 * 1024


class Journal:
    """Appends events (thread-safe) and reads back those after a position."""

    def __init__(self, directory: str | Path, *, fsync: bool = False,
                 segment_bytes: int = _SEGMENT_BYTES) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd = -1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            segments = self.segments()
            self._segment = segments[-1] if segments else 1
            self._next_seq = self._last_seq(segments) + 1
            self._open(self._segment)
        except OSError as exc:
            raise JournalError(f"cannot open the event journal {self.directory}: {exc}") from exc
        self._written = 0  # appends made, and appends known to be on disk (fsync mode)
        self._synced = 0

    # -- writing ---------------------------------------------------------------------------

    def append(self, event: Event, job_json: str | None) -> tuple[int, Position]:
        """Write one event; returns its sequence number and the position after it."""
        head = json.dumps([event.name, event.type, event.job, event.extra])
        with self._lock:
            seq = self._next_seq
            line = f"{seq}\t{head}\t{job_json or 'null'}\n".encode()
            try:
                if self._offset + len(line) > self.segment_bytes and self._offset:
                    self._open(self._segment + 1)
                _write_all(self._fd, line)
            except OSError as exc:
                raise JournalError(f"cannot write the event journal {self.directory}: "
                                   f"{exc.strerror or exc}") from exc
            self._next_seq += 1
            self._offset += len(line)
            self._written += 1
            mine = self._written
            end = Position(self._segment, self._offset)
        if self.fsync:
            self._sync(mine)
        return seq, end

    def _sync(self, mine: int) -> None:
        with self._sync_lock:
            if self._synced >= mine:
                return  # a sync that started after our write already covered it
            with self._lock:
                target, fd = self._written, self._fd
            try:
                os.fsync(fd)
            except OSError as exc:
                raise JournalError(f"cannot sync the event journal {self.directory}: "
                                   f"{exc.strerror or exc}") from exc
            self._synced = target

    def _open(self, segment: int) -> None:
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._fd >= 0:
            if self.fsync:
                os.fsync(self._fd)
            os.close(self._fd)
        self._fd, self._segment = fd, segment
        self._offset = os.fstat(fd).st_size

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1

    # -- reading and trimming --------------------------------------------------------------

    def segments(self) -> list[int]:
        out = []
        for p in self.directory.glob("*.log"):
            with contextlib.suppress(ValueError):
                out.append(int(p.stem))
        return sorted(out)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:06d}.log"

    def read_from(self, start: Position) -> Iterator[JournalEntry]:
        """Every complete line after `start`, in order (a torn last line is skipped)."""
        for segment in self.segments():
            if segment < start.segment:
                continue
            data = self._path(segment).read_bytes()
            offset = start.offset if segment == start.segment else 0
            while True:
                nl = data.find(b"\n", offset)
                if nl < 0:
                    break
                entry = _parse(data[offset:nl], Position(segment, nl + 1))
                offset = nl + 1
                if entry is not None:
                    yield entry

    def _last_seq(self, segments: list[int]) -> int:
        for segment in reversed(segments):
            data = self._path(segment).read_bytes()
            lines = data.split(b"\n")
            for raw in reversed(lines[:-1]):  # the part after the last newline is torn
                entry = _parse(raw, Position(segment, 0))
                if entry is not None:
                    return entry.seq
        return 0

    def trim(self, consumed: Position) -> None:
        """Delete segments wholly before `consumed` (their events are all matched)."""
        for segment in self.segments():
            if segment >= consumed.segment:
                break
            with contextlib.suppress(OSError):
                self._path(segment).unlink()

    def discard(self) -> None:
        """Forget every journalled event (a new trail starts with an empty journal)."""
        with self._lock:
            for segment in self.segments():
                with contextlib.suppress(OSError):
                    self._path(segment).unlink()
            os.close(self._fd)
            self._fd = -1
            self._open(1)

    def ensure_after(self, seq: int) -> None:
        """Number new events after `seq` (the trail may know of more than the files)."""
        with self._lock:
            self._next_seq = max(self._next_seq, seq + 1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _parse(raw: bytes, end: Position) -> JournalEntry | None:
    try:
        seq_text, head, job = raw.decode().split("\t", 2)
        name, typ, job_id, extra = json.loads(head)
        event = Event(name=name, type=typ, job=job_id, extra=extra)
        return JournalEntry(int(seq_text), event, None if job == "null" else job, end)
    except (ValueError, TypeError):
        return None
