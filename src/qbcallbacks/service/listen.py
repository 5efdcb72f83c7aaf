"""What a listener is told: where (`--listen`), and the guards every listener enforces."""

from __future__ import annotations

import grp
from dataclasses import dataclass

from ..errors import QbCallbacksError

__all__ = ["Guard", "ListenError", "group_id", "parse_listen"]


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
