"""What a listener is told: where (`--listen`), and the guards every listener enforces; a
Unix socket bound with its guards, and a connection refused over the cap."""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import QbCallbacksError

__all__ = ["Guard", "ListenError", "bind_unix", "group_id", "parse_listen", "refuse"]


class ListenError(QbCallbacksError):
    """The service cannot listen where it was told to."""


def parse_listen(text: str) -> tuple[str, str, int]:
    """`unix:PATH` or `tcp:HOST:PORT` as (kind, path or host, port)."""
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest:
        return "unix", rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and int(port) < 65536:
            return "tcp", host.strip("[]"), int(port)
    raise ListenError(f"--listen: {text!r} is not unix:SOCKET or tcp:HOST:PORT")


@dataclass(frozen=True)
class Guard:
    """What every listener enforces."""

    token: str | None = None
    max_connections: int = 64
    #: Unix socket: its mode and group (a name or a number; None: the service's own).
    socket_mode: int = 0o660
    socket_group: str | None = None
    #: Seconds a new connection has to say `hello`, and an HTTP read may wait (a whole
    #: body may take three times that).
    read_timeout: float = 10.0


def group_id(group: str) -> int:
    """A group given by name or number."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ListenError(f"--socket-group: no group {group!r}") from None


def bind_unix(path: Path, guard: Guard) -> socket.socket:
    """A listening Unix socket at `path` with the guard's mode and group; a socket file left
    by a service that died is replaced, one a live service listens on is not."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ListenError(f"--listen: {path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a service that died: nobody answers there
        else:
            raise ListenError(f"--listen: a service already listens on {path}")
        finally:
            probe.close()
    gid = group_id(guard.socket_group) if guard.socket_group is not None else -1
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # owner-only from the bind on, until its mode is set
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    try:
        if gid >= 0:
            os.chown(path, -1, gid)
        os.chmod(path, guard.socket_mode)
    except OSError:
        sock.close()
        raise
    sock.listen(64)
    return sock


def refuse(conn: socket.socket, line: bytes) -> None:
    """One error line, never waited for, then close: the accept loop never blocks on it."""
    with contextlib.suppress(OSError):
        conn.send(line, socket.MSG_DONTWAIT)
    with contextlib.suppress(OSError):
        conn.close()
