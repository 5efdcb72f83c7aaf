"""The lines of one connection, read straight from its socket, so that the connection knows
when the next read would wait: then, and only then, it writes the answers it has gathered, so
the answers to a pipelined burst go out in one write instead of one each. `batch` gives every
whole line a read brought, so a burst of requests is answered as one batch."""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..stream import OverlongLine


class SocketLines:
    """The lines of a socket, a read's worth at a time (`batch`), or one at a time
    (`readline`, a `stream.LineSource`); `before_wait` is called each time no whole line is
    left and the next read would wait for the peer."""

    def __init__(self, sock: socket.socket, before_wait: Callable[[], None],
                 chunk: int = 1 << 16) -> None:
        self.sock = sock
        self.before_wait = before_wait
        self.chunk = chunk
        self._buf = bytearray()
        self._start = 0
        self._eof = False

    def batch(self, limit: int) -> list[bytes | OverlongLine]:
        """The whole lines in hand, line ends removed (read from the socket when there is
        none); at the end of the stream an unfinished last line as it is, then []. A line
        longer than `limit` bytes is never held whole: an `OverlongLine` stands for it and
        ends the list (what follows it is not read)."""
        while True:
            buf, start = self._buf, self._start
            cut = buf.rfind(b"\n", start)
            if cut >= 0:
                self._start = cut + 1
                return _split(bytes(buf[start:cut]), limit)
            if len(buf) - start > limit:
                self._start = len(buf)
                return [OverlongLine(limit)]
            if self._eof:
                self._start = len(buf)
                return _split(bytes(buf[start:]), limit) if len(buf) > start else []
            self._fill()

    def readline(self, size: int = -1, /) -> bytes:
        """The next line with its end, at most `size` bytes (longer: its first `size` bytes,
        without an end); b"" at the end of the stream."""
        limit = size if size >= 0 else 1 << 62
        while True:
            end = self._buf.find(b"\n", self._start, self._start + limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buf) - self._start >= limit or self._eof:
                return self._take(min(len(self._buf), self._start + limit))
            self._fill()

    def _fill(self) -> None:
        """Wait for more (after `before_wait`)."""
        self.before_wait()
        data = self.sock.recv(self.chunk)
        if not data:
            self._eof = True
        else:
            if self._start:
                del self._buf[:self._start]
                self._start = 0
            self._buf += data

    def _take(self, end: int) -> bytes:
        line = bytes(self._buf[self._start:end])
        self._start = end
        return line


def _split(chunk: bytes, limit: int) -> list[bytes | OverlongLine]:
    """The lines of `chunk` (no line end after its last), each without its line end."""
    lines = chunk.split(b"\n")
    if len(chunk) > limit:
        for at, line in enumerate(lines):
            if len(line) > limit:
                return [*_strip(lines[:at], chunk), OverlongLine(limit)]
    return _strip(lines, chunk)


def _strip(lines: list[bytes], chunk: bytes) -> list[bytes | OverlongLine]:
    """`lines` with the carriage returns before their line ends removed."""
    if b"\r" in chunk:
        return [line.rstrip(b"\r") for line in lines]
    return list(lines)
