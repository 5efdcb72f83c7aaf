"""Who a connection is: the `hello` handshake, the roles and the shared secret.

Every connection says who it is before anything else. `supervisor` sends events and answers
the service's questions (one connection per producer at a time); `adapter` sends events only;
`admin` drains, reloads and reads health and metrics, and is never asked anything. TCP and
HTTP ask for the token of `--token-file` when one is set (compared in constant time); the Unix
socket is guarded by its file mode and group, and checks a token only when one is sent.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import QbCallbacksError
from .core import RpcFault
from .messages import FORBIDDEN, INVALID_PARAMS, MAX_SEQ
from .producers import MAX_NAME

#: What each role may ask (`hello` aside).
ALLOWED: dict[str, frozenset[str]] = {
    "supervisor": frozenset({"event", "attach", "health"}),
    "adapter": frozenset({"event", "health"}),
    "admin": frozenset({"drain", "reload", "health", "metrics", "global"}),
}
#: The roles that send events, and so need a producer name and an epoch.
SENDERS = frozenset({"supervisor", "adapter"})


class TokenError(QbCallbacksError):
    """The token file cannot be used."""


@dataclass(frozen=True)
class Identity:
    """What a connection said in its `hello`."""

    role: str
    producer: str | None = None
    epoch: int = 0


def read_token(path: str | Path) -> str:
    """The shared secret: the file's first line, which must not be empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"--token-file: cannot read {path}: {exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise TokenError(f"--token-file: {path} holds no token of at least 16 characters")
    return token


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) reaches this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(str(i[4][0])).is_loopback
                                   for i in infos)


def token_matches(given: object, expected: str) -> bool:
    """A constant-time comparison: how much of a wrong token matched never shows."""
    return isinstance(given, str) and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode())


def producer_of(name: object, epoch: object) -> tuple[str, int]:
    """A valid producer name and epoch, or an `RpcFault` saying what is wrong."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise RpcFault(INVALID_PARAMS, f"'producer' must be a printable name of 1 to {MAX_NAME} "
                       "characters")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_SEQ:
        raise RpcFault(INVALID_PARAMS, f"'epoch' must be a whole number from 0 to {MAX_SEQ}")
    return name, epoch


def hello(params: dict[str, Any], token: str | None, token_required: bool) -> Identity:
    """The identity a `hello` asks for (raises `RpcFault` when it is refused)."""
    role = params.get("role")
    if role not in ALLOWED:
        raise RpcFault(INVALID_PARAMS, "'role' must be supervisor, adapter or admin")
    unknown = set(params) - {"role", "producer", "epoch", "token"}
    if unknown:
        raise RpcFault(INVALID_PARAMS, f"hello takes role, producer, epoch and token, not "
                       f"{', '.join(sorted(unknown))}")
    given = params.get("token")
    if (token is not None and (token_required or given is not None)
            and not token_matches(given, token)):
        raise RpcFault(FORBIDDEN, "the token is missing or wrong")
    if role not in SENDERS:
        return Identity(str(role))
    name, epoch = producer_of(params.get("producer"), params.get("epoch"))
    return Identity(str(role), name, epoch)
