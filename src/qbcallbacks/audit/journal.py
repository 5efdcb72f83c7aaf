"""The event journal: `emit` appends here before it returns, so an accepted event survives.

Segments next to the audit database (`<db>.events/000001.log`, ...), each allocated on disk
in full when opened (so a full disk shows up as an error here, never later) and mapped into
memory. Each line is one event: `seq<TAB>[name, type, job, extra]<TAB>job JSON or null`, or
`[name, type, job, extra, key]` for an event given with a caller's key (a number, or a
list such as the service's `[producer, epoch, seq, digest]`); a segment starts with
`key<TAB>N`, the highest number key so far, when there is one, so the highest key survives
the trimming of older segments. The unused rest of a segment is
zero bytes. Copying a line into the shared mapping puts it in
the kernel's page cache, which a killed process cannot undo: durability against a killed host
without a system call, and without letting go of the interpreter lock in the middle of `emit`.
With `fsync=True` each `append` also waits until the line is on disk; appends that arrive
while a sync is under way share the next one (group commit), so the cost is paid once per
group, not per event. Every open starts a new segment, so nothing is ever appended after a
line torn by a kill; when the disk has no room for one, the journal opens anyway with
`problem` set, and the first append that finds room opens the segment.

The audit trail records, in the same transaction as a batch's firings, the position after the
batch's last event (`AuditStore.record_batch`); on restart `read_from` that position gives the
events accepted but not yet matched. Segments wholly before that position are deleted.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import threading
import time
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii as _quote
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


#: What a caller may journal with an event: an idempotency number or a list of plain values.
JournalKey = int | list[str | int] | None


class JournalEntry(NamedTuple):
    """One journalled event and the position just after it."""

    seq: int
    event: Event
    job_json: str | None
    end: Position
    #: The caller's key given to `append`, if any (a number or a JSON list).
    key: JournalKey = None


#: `Position(segment, offset)` without the named tuple's Python-level constructor (once per
#: event on `emit`'s path).
_position = tuple.__new__

_SEGMENT_BYTES = 4 * 1024 * 1024
#: The mode of journal files unless told otherwise (the umask may narrow this default).
FILE_MODE = 0o640


class Journal:
    """Appends events (thread-safe) and reads back those after a position."""

    def __init__(self, directory: str | Path, *, fsync: bool = False,
                 segment_bytes: int = _SEGMENT_BYTES, file_mode: int | None = None) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        #: Each segment's mode, set whatever the umask (None: `FILE_MODE` under the umask).
        self.file_mode = file_mode
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd = -1
        self._mm: mmap.mmap | None = None
        self._last_key = 0
        self._size = self._offset = 0
        #: Why no segment is open (a full disk at the start), until an append opens one,
        #: and since when (Unix seconds).
        self.problem: str | None = None
        self.problem_since: float | None = None
        #: Segments from this one on are kept whatever `trim` is told (see `keep_from`).
        self.keep_from: Position | None = None
        #: The position after the last line appended with a key.
        self.key_end = Position(0, 0)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            segments = self.segments()
            self._segment = segments[-1] if segments else 0
            self._next_seq = self._last_seq(segments) + 1
            self._last_key = self._find_last_key(segments)
        except OSError as exc:
            raise JournalError(f"cannot open the event journal {self.directory}: {exc}") from exc
        try:
            self._open(self._segment + 1)
        except OSError as exc:  # a full disk: start anyway, refuse events until there is room
            self.problem = (f"cannot open a journal segment in {self.directory}: "
                            f"{exc.strerror or exc}")
            self.problem_since = time.time()
        self._written = 0  # appends made, and appends known to be on disk (fsync mode)
        self._synced = 0

    # -- writing ---------------------------------------------------------------------------

    @property
    def last_key(self) -> int:
        """The highest idempotency key journalled (0: none), across restarts."""
        return self._last_key

    def append(self, event: Event, job_json: str | None,
               key: JournalKey = None) -> tuple[int, Position]:
        """Write one event (with the caller's `key`, if any); returns its sequence number and
        the position after it."""
        head = _head(event, key)
        with self._lock:
            seq = self._next_seq
            line = f"{seq}\t{head}\t{job_json or 'null'}\n".encode()
            start, mm = self._offset, self._mm
            stop = start + len(line)
            try:
                if mm is None or stop > self._size:
                    self._open(self._segment + 1, len(line) + 32)
                    start, mm = self._offset, self._mm
                    stop = start + len(line)
                assert mm is not None
                mm[start:stop] = line
            except (OSError, ValueError) as exc:
                raise JournalError(f"cannot write the event journal {self.directory}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from exc
            if self.problem is not None:
                self.problem = None
            self._next_seq = seq + 1
            self._offset = stop
            end = _position(Position, (self._segment, stop))
            if key is not None:
                if isinstance(key, int) and key > self._last_key:
                    self._last_key = key
                self.key_end = end
            self._written += 1
            mine = self._written
        if self.fsync:
            self._sync(mine)
        return seq, end

    def _sync(self, mine: int) -> None:
        with self._sync_lock:
            if self._synced >= mine:
                return  # a sync that started after our write already covered it
            with self._lock:
                target, mm = self._written, self._mm
            try:
                if mm is not None:
                    mm.flush()
            except (OSError, ValueError) as exc:
                raise JournalError(f"cannot sync the event journal {self.directory}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from exc
            self._synced = target

    def _open(self, segment: int, need: int = 0) -> None:
        size = max(self.segment_bytes, need, 64)
        fd = os.open(self._path(segment), os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            if self.file_mode is not None:
                os.fchmod(fd, self.file_mode)
            os.posix_fallocate(fd, 0, size)
            mm = mmap.mmap(fd, size)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                self._path(segment).unlink()
            raise
        self._release()
        self._fd, self._mm, self._segment, self._size, self._offset = fd, mm, segment, size, 0
        if self._last_key:
            marker = f"key\t{self._last_key}\n".encode()
            mm[:len(marker)] = marker
            self._offset = len(marker)

    def _release(self) -> None:
        if self._mm is not None:
            with contextlib.suppress(OSError, ValueError):
                if self.fsync:
                    self._mm.flush()
                self._mm.close()
            self._mm = None
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        with self._lock:
            self._release()

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
            with self._mapped(segment) as data:
                offset = start.offset if segment == start.segment else 0
                while True:
                    nl = data.find(b"\n", offset)
                    if nl < 0:
                        break
                    entry = _parse(data[offset:nl], Position(segment, nl + 1))
                    offset = nl + 1
                    if entry is not None:
                        yield entry

    @contextlib.contextmanager
    def _mapped(self, segment: int) -> Iterator[mmap.mmap | bytes]:
        """A segment's bytes, mapped rather than read (segments are large and mostly zeros)."""
        with open(self._path(segment), "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                yield b""
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                yield mm

    def _last_seq(self, segments: list[int]) -> int:
        for segment in reversed(segments):
            with self._mapped(segment) as data:
                end = data.rfind(b"\n")  # what follows the last newline is torn or zeros
                while end > 0:
                    start = data.rfind(b"\n", 0, end) + 1
                    entry = _parse(data[start:end], Position(segment, 0))
                    if entry is not None:
                        return entry.seq
                    end = start - 1
        return 0

    def _find_last_key(self, segments: list[int]) -> int:
        """The last key line or keyed event of the newest segment that has one."""
        for segment in reversed(segments):
            with self._mapped(segment) as data:
                end = data.rfind(b"\n")
                while end > 0:
                    start = data.rfind(b"\n", 0, end) + 1
                    raw = data[start:end]
                    if raw.startswith(b"key\t"):
                        with contextlib.suppress(ValueError):
                            return int(raw[4:])
                    else:
                        entry = _parse(raw, Position(segment, 0))
                        if entry is not None and isinstance(entry.key, int):
                            return entry.key
                    end = start - 1
        return 0

    def trim(self, consumed: Position) -> None:
        """Delete segments wholly before `consumed` (their events are all matched), and
        before `keep_from` when it is set (what a caller still has to read back)."""
        keep = consumed if self.keep_from is None else min(consumed, self.keep_from)
        for segment in self.segments():
            if segment >= keep.segment:
                break
            with contextlib.suppress(OSError):
                self._path(segment).unlink()

    def discard(self) -> None:
        """Forget every journalled event (a new trail starts with an empty journal)."""
        with self._lock:
            for segment in self.segments():
                with contextlib.suppress(OSError):
                    self._path(segment).unlink()
            self._release()
            self._last_key = 0
            self._open(1)

    def ensure_after(self, seq: int) -> None:
        """Number new events after `seq` (the trail may know of more than the files)."""
        with self._lock:
            self._next_seq = max(self._next_seq, seq + 1)


def release_tails(directory: Path) -> int:
    """Give back the unused, zeroed tail of each segment (a new open never appends to an old
    segment); the bytes freed. Called by the trail's writer before the journal opens: on a
    disk that filled up after a kill this is the room a start needs. A segment whose last
    line is torn is left as it is."""
    freed = 0
    for path in sorted(directory.glob("*.log")):
        with contextlib.suppress(OSError, ValueError), open(path, "r+b") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                continue
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                end = mm.rfind(b"\n") + 1
                torn = mm.find(b"\0", end) != end or bool(mm[end:].strip(b"\0"))
            if end < size and not torn:
                fh.truncate(end)
                freed += size - end
    return freed


def _head(event: Event, key: JournalKey) -> str:
    """`json.dumps([name, type, job, extra(, key)])`, written directly when the key is none,
    a number or a list of strings and numbers (every key the service gives), which costs a
    third of it on the service's hot path. A property test compares the two."""
    extra = "null" if event.extra is None else _quote(event.extra)
    head = f"[{_quote(event.name)}, {_quote(event.type)}, {int.__repr__(event.job)}, {extra}"
    if key is None:
        return head + "]"
    if type(key) is int:
        return f"{head}, {int.__repr__(key)}]"
    if type(key) is list:
        parts = []
        for item in key:
            if type(item) is str:
                parts.append(_quote(item))
            elif type(item) is int:
                parts.append(int.__repr__(item))
            else:
                break
        else:
            return f"{head}, [{', '.join(parts)}]]"
    return json.dumps([event.name, event.type, event.job, event.extra, key])


def _parse(raw: bytes, end: Position) -> JournalEntry | None:
    try:
        seq_text, head, job = raw.decode().split("\t", 2)
        name, typ, job_id, extra, *rest = json.loads(head)
        event = Event(name=name, type=typ, job=job_id, extra=extra)
        key = rest[0] if rest else None
        if not (key is None or isinstance(key, int | list)) or isinstance(key, bool):
            return None
        return JournalEntry(int(seq_text), event, None if job == "null" else job, end, key)
    except (ValueError, TypeError):
        return None
