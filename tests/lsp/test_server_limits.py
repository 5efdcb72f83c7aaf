"""The language server on big and bad input, driven over stdio by a real client (pytest-lsp):
malformed requests get JSON-RPC errors, a document over `check`'s size limit gets `check`'s
size diagnostic and nothing else, a FIFO is never opened, and a hover is answered while a
large document is being analysed (asserted by the order of the answers, not by timings)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")
_IDS = itertools.count(1)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("callback")
    (root / "ok.py").write_text("pass\n")
    os.mkfifo(root / "pipe.py")
    return root


def uri_of(path: Path) -> str:
    uri = from_fs_path(str(path))
    assert uri is not None
    return uri


def open_doc(client: LanguageClient, path: Path, text: str) -> str:
    uri = uri_of(path)
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(t.DidOpenTextDocumentParams(text_document=t.TextDocumentItem(
        uri=uri, language_id="qbcallbacks", version=1, text=text)))
    return uri


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(t.DidCloseTextDocumentParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))


async def fresh_diagnostics(client: LanguageClient, uri: str) -> list[t.Diagnostic]:
    async with asyncio.timeout(60):
        while uri not in client.diagnostics:
            await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics.pop(uri))


async def raw_request(client: LanguageClient, method: str, params: Any) -> Any:
    """Send a request exactly as given (the typed client would refuse to build a bad one)."""
    msg_id = f"raw-{next(_IDS)}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method,
                                "params": params})
    async with asyncio.timeout(60):
        return await asyncio.wrap_future(future)


def hover_params(uri: str, line: int, character: int) -> t.HoverParams:
    return t.HoverParams(text_document=t.TextDocumentIdentifier(uri=uri),
                         position=t.Position(line=line, character=character))


async def test_malformed_requests_get_an_error_response(client: LanguageClient,
                                                        farm: Path) -> None:
    uri = open_doc(client, farm / "callbacks.conf", "ok.py = complete-job-self\n")
    await fresh_diagnostics(client, uri)
    position = {"textDocument": {"uri": uri}, "position": {"line": -1, "character": 0}}
    cases: list[tuple[str, Any, str]] = [
        ("textDocument/hover", None, "params must be an object, not null"),
        ("textDocument/semanticTokens/full", None, "params must be an object, not null"),
        ("textDocument/completion", [1, 2], "params must be an object, not list"),
        ("textDocument/hover", position, "Position.line should be in range"),
        ("textDocument/hover", {**position, "position": {"line": 0, "character": -3}},
         "Position.character should be in range"),
    ]
    for method, params, words in cases:
        with pytest.raises(JsonRpcException) as caught:
            await raw_request(client, method, params)
        assert caught.value.code == -32602, method
        assert words in caught.value.message and method in caught.value.message
    # The server still answers a well-formed request after all of them.
    good = await client.text_document_hover_async(hover_params(uri, 0, 10))
    assert good is not None and isinstance(good.contents, t.MarkupContent)
    assert "finished successfully" in good.contents.value
    close(client, uri)


async def test_a_document_over_the_size_limit_gets_qcb007_only(client: LanguageClient,
                                                               farm: Path) -> None:
    line = "ok.py = complete-job-self && done-work-render-*\n"
    text = line * (11 * (1 << 20) // len(line))
    uri = open_doc(client, farm / "big" / "callbacks.conf", text)
    diagnostics = await fresh_diagnostics(client, uri)
    assert [d.code for d in diagnostics] == ["QCB007"]
    assert "over the limit of 1048576 bytes" in diagnostics[0].message
    tokens = await client.text_document_semantic_tokens_full_async(t.SemanticTokensParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert tokens is not None and list(tokens.data) == []
    assert await client.text_document_hover_async(hover_params(uri, 0, 10)) is None
    close(client, uri)


async def test_a_hover_is_answered_while_a_large_document_is_analysed(
        client: LanguageClient, farm: Path) -> None:
    small = open_doc(client, farm / "small.conf", "ok.py = complete-job-self\n")
    await fresh_diagnostics(client, small)
    lines = [f"ok.py = complete-job-{i} && (done-work-render-* || failed-job-parent)\n"
             for i in range(1, 12_000)]  # under the limit: fully analysed, taking a while
    count = len(lines)
    big = open_doc(client, farm / "large.conf", "".join(lines))
    tokens = asyncio.ensure_future(client.text_document_semantic_tokens_full_async(
        t.SemanticTokensParams(text_document=t.TextDocumentIdentifier(uri=big))))
    hover = asyncio.ensure_future(client.text_document_hover_async(
        hover_params(small, 0, 10)))
    done, _ = await asyncio.wait({tokens, hover}, timeout=120,
                                 return_when=asyncio.FIRST_COMPLETED)
    assert done == {hover}, "the hover waited for the large document's tokens"
    answer = hover.result()
    assert answer is not None and isinstance(answer.contents, t.MarkupContent)
    assert "finished successfully" in answer.contents.value
    result = await asyncio.wait_for(tokens, 120)
    assert result is not None and len(result.data) == 5 * 15 * count  # every token came
    assert (await fresh_diagnostics(client, big)) == []
    close(client, small)
    close(client, big)


async def test_fifos_are_never_opened(client: LanguageClient, farm: Path) -> None:
    uri = open_doc(client, farm / "callbacks.conf", "pipe.py = complete-job-self\n")
    diagnostics = await fresh_diagnostics(client, uri)
    assert [d.code for d in diagnostics] == ["QCB114"]
    answer = await client.text_document_hover_async(hover_params(uri, 0, 2))
    assert answer is not None and isinstance(answer.contents, t.MarkupContent)
    assert "a FIFO, not a regular file" in answer.contents.value
    # A request about a document that is not open is answered from nothing: the FIFO on
    # disk at that path is not read in its place.
    fifo = farm / "other" / "callbacks.conf"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    tokens = await client.text_document_semantic_tokens_full_async(t.SemanticTokensParams(
        text_document=t.TextDocumentIdentifier(uri=uri_of(fifo))))
    assert tokens is not None and list(tokens.data) == []
    assert await client.text_document_hover_async(hover_params(uri_of(fifo), 0, 0)) is None
    close(client, uri)


def _framed(stdout: bytes) -> list[dict[str, Any]]:
    """The messages of an LSP byte stream."""
    out = []
    while stdout:
        head, _, rest = stdout.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
        out.append(json.loads(rest[:length]))
        stdout = rest[length:]
    return out


async def test_not_json_gets_a_parse_error_and_shutdown_then_exit_ends_with_0(
        server_command: list[str]) -> None:
    """A message that is not JSON is answered with -32700 (id null); the protocol's orderly
    end leaves no traceback and status 0 (the server closed stdout)."""
    bodies = [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                          "params": {"capabilities": {}}}).encode(),
              b'{"jsonrpc": "2.0", "id": 7, "method": "textDocument/hover", ',
              *(json.dumps(m).encode() for m in (
                  {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
                  {"jsonrpc": "2.0", "method": "exit"}))]
    stream = b"".join(b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies)
    done = await asyncio.to_thread(subprocess.run, server_command, input=stream,
                                   capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"closed file" not in done.stderr  # the exit itself is clean
    errors = [m for m in _framed(done.stdout) if "error" in m]
    assert [(m["id"], m["error"]["code"]) for m in errors] == [(None, -32700)]
    assert any(m.get("id") == 2 and "result" in m for m in _framed(done.stdout))
