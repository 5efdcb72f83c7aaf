"""The lines of one connection, read straight from its socket, so that the connection knows
when the next read would wait: then, and only then, it writes the answers it has gathered, so
the answers to a pipelined burst go out in one write instead of one each."""

from __future__ import annotations

import socket
from collections.abc import Callable


class SocketLines:
    """`readline(limit)` over a socket (a `stream.LineSource`), calling `before_wait` each time
    it has no whole line left and must wait for the peer."""

    def __init__(self, sock: socket.socket, before_wait: Callable[[], None],
                 chunk: int = 1 << 16) -> None:
        self.sock = sock
        self.before_wait = before_wait
        self.chunk = chunk
        self._buf = bytearray()
        self._start = 0
        self._eof = False

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
