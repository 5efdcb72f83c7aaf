"""Position encodings the client offers: UTF-8 and UTF-32 columns for a non-ASCII line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as t
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "qbcallbacks", "lsp"])


@pytest_lsp.fixture(config=SERVER, params=["utf-8", "utf-32"])
async def offered(lsp_client: LanguageClient, request: pytest.FixtureRequest,
                  ) -> AsyncIterator[None]:
    encoding = str(request.param)
    result = await lsp_client.initialize_session(t.InitializeParams(
        capabilities=t.ClientCapabilities(general=t.GeneralClientCapabilities(
            position_encodings=[encoding])),
        initialization_options={"debounce": 0}))
    assert result.capabilities.position_encoding == encoding
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_utf8_and_utf32_when_the_client_offers_them(
        offered: LanguageClient, tmp_path: Path) -> None:
    lsp_client = offered
    general = lsp_client.capabilities.general if lsp_client.capabilities else None
    assert general is not None and general.position_encodings
    encoding = general.position_encodings[0]
    name = "r\u00e9nd\u00e9r\U0001f3ac.py"  # 10 code points, 15 UTF-8 bytes
    (tmp_path / name).write_text("pass\n")
    (tmp_path / name).chmod(0o644)
    uri = from_fs_path(str(tmp_path / "callbacks.conf"))
    assert uri is not None
    lsp_client.text_document_did_open(t.DidOpenTextDocumentParams(
        text_document=t.TextDocumentItem(uri=uri, language_id="qbcallbacks", version=1,
                                         text=f"{name} = compelte-job-self\n")))
    async with asyncio.timeout(30):
        while uri not in lsp_client.diagnostics:
            await lsp_client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [diag] = lsp_client.diagnostics[uri]
    start = {"utf-8": 18, "utf-32": 13}[encoding]
    assert (diag.range.start.character, diag.range.end.character) == (start, start + 8)
