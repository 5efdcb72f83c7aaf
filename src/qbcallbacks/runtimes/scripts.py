"""Reading a script at run time, and keeping what was made of it while its text stays the same.

A run must never execute stale code, so a cached program is used only when the bytes the run
has just read are the bytes it was made from. The file's metadata cannot promise that: an
edit in place that keeps the size within one timestamp tick (a few milliseconds of the
kernel's coarse clock) leaves size and mtime unchanged, `touch -d` or `cp -p` can put the
old mtime back, and on NFS `stat` answers from an attribute cache while `open` revalidates.
Reading instead costs one open, fstat, read and close of a small file, a few microseconds,
well under what checking the text again costs, and the comparison is a byte compare of the
text kept beside the program (no digest whose collisions would need an argument).

What is kept is bounded: at most `max_entries` scripts and `max_bytes` of their text, least
recently used first out, and an entry no run has asked for in `max_idle` seconds is dropped
when the next lookup passes, so scripts a reloaded configuration no longer names do not stay
for good. A script that can no longer be read loses its entry with the failed run.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import QbCallbacksError
from ..lang.source import file_kind_name, read_at_most

T = TypeVar("T")
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class ScriptRefused(QbCallbacksError):
    """The script is not a regular file within its size limit, so it is not read."""


def read_script(path: str, limit: int) -> bytes:
    """The bytes of the script at `path`, at most `limit` of them.

    Opened without blocking, so a FIFO or device put where the script was is refused at once
    (as is anything but a regular file); the size is checked on the open descriptor before a
    byte is read, and the read stops past the limit, so a huge file costs nothing. Raises
    :class:`ScriptRefused` for those and OSError when the file cannot be opened.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ScriptRefused(f"it is {file_kind_name(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise ScriptRefused(_too_big(f"{info.st_size} bytes,", limit))
        data = read_at_most(fd, limit, info.st_size + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew since the fstat
        raise ScriptRefused(_too_big("more than", limit))
    return data


def _too_big(size: str, limit: int) -> str:
    return f"it is {size} over the limit of {limit} bytes"


class _Entry(Generic[T]):
    __slots__ = ("source", "used", "value")

    def __init__(self, source: bytes | str, value: T, used: float) -> None:
        self.source = source
        self.value = value
        self.used = used


class ProgramCache(Generic[T]):
    """What `build` made of each script's text, per key (a path, or inline code itself).

    Thread-safe; `build` runs outside the lock, so two runs that miss at once may both build
    and the later one is kept, which is harmless."""

    def __init__(self, build: Callable[[str, bytes | str], T], *, max_entries: int = 256,
                 max_bytes: int = 8 << 20, max_idle: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_idle = max_idle
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def size(self) -> int:
        """Bytes of script text kept."""
        return self._bytes

    def keys(self) -> list[str]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get(self, key: str, source: bytes | str) -> T:
        """The program made from `source`: the cached one if `key` was made from the very
        same text, else a fresh one (kept in place of the old)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is not None and entry.source == source:
                entry.used = now
                self._entries.move_to_end(key)
                return entry.value
        value = self._build(key, source)
        if len(source) <= self._max_bytes:
            with self._lock:
                self._drop(key)
                self._entries[key] = _Entry(source, value, now)
                self._bytes += len(source)
                while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                    self._drop(next(iter(self._entries)))
        return value

    def get_file(self, path: str, limit: int) -> T:
        """The program of the script at `path`, read now (:func:`read_script`); a script that
        cannot be read loses its entry and raises as `read_script` does."""
        try:
            source = read_script(path, limit)
        except (OSError, ScriptRefused):
            self.forget(path)
            raise
        return self.get(path, source)

    def forget(self, key: str) -> None:
        """Drop what is kept for `key` (its script could not be read)."""
        with self._lock:
            self._drop(key)

    def _expire(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest = next(iter(entries.values()))
            if now - oldest.used <= self._max_idle:
                return
            self._bytes -= len(oldest.source)
            entries.popitem(last=False)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.source)
