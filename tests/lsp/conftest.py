"""The LSP client both protocol test modules drive: `qbcallbacks lsp` over stdio, started once
per module (each module has its own server and event loop) and initialised with a short
debounce so that diagnostics follow an edit quickly."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest
import pytest_lsp
from lsprotocol import types as t
from pytest_lsp import ClientServerConfig, LanguageClient

#: How the tests start the server; a test that talks raw stdio starts the same command.
SERVER_COMMAND = [sys.executable, "-m", "qbcallbacks", "lsp"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND), scope="module")
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=t.ClientCapabilities(), initialization_options={"debounce": 0.05}))
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def server_command() -> list[str]:
    """The command line `client` starts, for a test that talks to the server's raw stdio."""
    return list(SERVER_COMMAND)
