"""The JSON-RPC side of the server: a malformed request gets an error response.

pygls turns a request whose params do not fit the method's schema (`params: null`, a negative
line) into a pop-up and no response, so the client waits for an answer that never comes.
JSON-RPC asks for an error response with the request's id: code -32602 (invalid params) with
a message that says which field was wrong. A malformed notification gets no response (JSON-RPC
forbids one); it is logged and dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cattrs import transform_error
from cattrs.v import format_exception
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger("qbcallbacks.lsp")


class Refused:
    """What a malformed message becomes once it has been answered: nothing left to handle."""

    __slots__ = ()


REFUSED = Refused()


def params_problem(data: dict[str, Any], exc: BaseException) -> str:
    """What was wrong with a request's params, in one line."""
    method = data.get("method")
    params = data.get("params")
    if not isinstance(params, dict):
        shown = "null" if params is None else type(params).__name__
        return f"invalid params for {method}: params must be an object, not {shown}"
    cause = exc.__cause__
    details: list[str] = []
    if cause is not None and isinstance(cause, Exception):
        try:
            details = transform_error(cause, path="$", format_exception=_why)
        except Exception:  # the error tree was not a cattrs one: fall back to its text
            details = [str(cause)]
    return f"invalid params for {method}: {'; '.join(details) or exc}"


def _why(exc: BaseException, _type: type | None) -> str:
    if isinstance(exc, ValueError):  # a validator's own words: "... should be in range ..."
        return str(exc)
    return format_exception(exc, _type)


class QbProtocol(LanguageServerProtocol):
    """pygls's protocol, answering malformed requests with an error instead of silence."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "jsonrpc" not in data or "method" not in data:
                raise
            if "id" not in data:
                log.warning("dropped a malformed %s notification", data.get("method"))
                return REFUSED
            error = exc
            if isinstance(exc, JsonRpcInvalidParams):
                error = JsonRpcInvalidParams(params_problem(data, exc))
            self._send_response(data["id"], error=error.to_response_error())
            return REFUSED

    def handle_message(self, message: Any) -> None:
        if message is REFUSED:
            return
        super().handle_message(message)

    def answer_unparsed(self, error: Exception) -> bool:
        """A message that is not JSON gets JSON-RPC's parse error, with a null id (its own
        cannot be read); True when `error` was that."""
        if not isinstance(error, json.JSONDecodeError):
            return False
        self._send_data({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32700, "message": f"parse error: the message is not JSON ({error})"}})
        return True
