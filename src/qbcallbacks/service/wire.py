"""The bytes of the line protocol: reading a request line, writing an answer line, both the
short way for the lines almost every request and answer are."""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import Any

#: The scanner `json.loads` runs, called without the steps around it. (The stubs type its
#: argument as the scanner class itself.)
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder())  # type: ignore[arg-type]


def loads(raw: bytes) -> Any:
    """`json.loads(raw)`: a line that is one JSON object with nothing around it (what
    supervisors send) is scanned directly, anything else (and every error) the usual way."""
    if raw[:1] == b"{" and raw[-1:] == b"}":
        try:
            text = raw.decode()
            found, end = _scan(text, 0)
        except (ValueError, StopIteration):
            return json.loads(raw)
        if end == len(text):
            return found
    return json.loads(raw)


def dumps(message: dict[str, Any]) -> bytes:
    """One compact line of `message`, as the protocol writes every answer."""
    return (json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def answer_line(key: Any, result: Any) -> bytes:
    """The line answering request `key` with `result`: the plain ack of an event with a
    number id (almost every line a supervisor is sent) from a template, else encoded."""
    if type(key) is int and type(result) is dict and len(result) == 1:
        ack = result.get("ack")
        if type(ack) is int:
            return b'{"jsonrpc":"2.0","id":%d,"result":{"ack":%d}}\n' % (key, ack)
    return dumps({"jsonrpc": "2.0", "id": key, "result": result})
