"""The language server driven over stdio by a real LSP client (pytest-lsp)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as t
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")
BROKEN = ("ok.py = complete-job-self\nmissing.py = done-job-self\nok.py = done-jbo-self\n"
          "shared.py = failed-job-self\n")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("callback")
    (root / "ok.py").write_text("# notify the wrangler\nprint('done')\n")
    (root / "extra.pl").write_text("print 1;\n")
    (root / "mail.qcb").write_text("mail-status\n")
    (root / "r\u00e9nd\u00e9r\U0001f3ac.py").write_text("pass\n")
    for p in root.iterdir():
        p.chmod(0o644)
    (root / "shared.py").write_text("pass\n")
    (root / "shared.py").chmod(0o666)  # writable by others: a permission warning
    return root


def uri_of(path: Path) -> str:
    uri = from_fs_path(str(path))
    assert uri is not None
    return uri


async def fresh_diagnostics(client: LanguageClient, uri: str) -> list[t.Diagnostic]:
    """Wait for the next diagnostics published for `uri`."""
    client.diagnostics.pop(uri, None)
    async with asyncio.timeout(30):
        while uri not in client.diagnostics:
            await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


def open_doc(client: LanguageClient, path: Path, text: str, language: str = "qbcallbacks",
             ) -> str:
    uri = uri_of(path)
    client.text_document_did_open(t.DidOpenTextDocumentParams(text_document=t.TextDocumentItem(
        uri=uri, language_id=language, version=1, text=text)))
    return uri


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=text)]))


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(t.DidCloseTextDocumentParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))


def shape(diags: list[t.Diagnostic]) -> list[tuple[object, ...]]:
    return sorted((d.code, d.severity, d.range.start.line, d.range.start.character,
                   d.range.end.line, d.range.end.character, d.message) for d in diags)


async def test_broken_file_gets_checks_diagnostics_then_clears(client: LanguageClient,
                                                               farm: Path) -> None:
    conf = farm / "callbacks.conf"
    uri = open_doc(client, conf, BROKEN)
    got = await fresh_diagnostics(client, uri)
    conf.write_text(BROKEN)
    conf.chmod(0o644)
    try:
        # The command itself, as an administrator runs it, with its JSON contract.
        done = subprocess.run([sys.executable, "-m", "qbcallbacks", "check", "--format", "json",
                               str(farm)], capture_output=True, text=True, timeout=120,
                              check=False)
    finally:
        conf.unlink()
    assert done.returncode == 1, done.stderr
    expected = json.loads(done.stdout)
    assert [d["code"] for d in expected] == ["QCB112", "QCB103", "QCB201"]
    error, warning = t.DiagnosticSeverity.Error, t.DiagnosticSeverity.Warning
    assert shape(got) == sorted(
        (d["code"], error if d["severity"] == "error" else warning, d["line"] - 1,
         d["column"] - 1, d["end_line"] - 1, d["end_column"] - 1, d["message"])
        for d in expected)
    jbo = next(d for d in got if d.code == "QCB103")
    assert (jbo.range.start.line, jbo.range.start.character, jbo.range.end.character) == (2, 13, 16)

    change(client, uri, 2, "ok.py = complete-job-self\n")
    assert await fresh_diagnostics(client, uri) == []
    close(client, uri)


async def test_near_miss_is_a_warning_with_a_quick_fix(client: LanguageClient,
                                                       farm: Path) -> None:
    uri = open_doc(client, farm / "near.conf",
                   "ok.py = compelte-job-self\nok.py = done-job-parent-3\nok.py = done-job-self\n"
                   "ok.py = done-job-self\n")
    diags = await fresh_diagnostics(client, uri)
    assert sorted(str(d.code) for d in diags) == ["QCB202", "QCB203", "QCB220"]
    assert all(d.severity == t.DiagnosticSeverity.Warning for d in diags)
    fixes: dict[str, list[t.TextEdit]] = {}
    for d in diags:
        actions = await client.text_document_code_action_async(t.CodeActionParams(
            text_document=t.TextDocumentIdentifier(uri=uri), range=d.range,
            context=t.CodeActionContext(diagnostics=[d])))
        assert actions is not None and len(actions) == 1
        action = actions[0]
        assert isinstance(action, t.CodeAction) and action.edit and action.edit.changes
        fixes[str(d.code)] = list(action.edit.changes[uri])
    [near] = fixes["QCB220"]
    assert near.new_text == "complete" and (near.range.start.character,
                                            near.range.end.character) == (8, 16)
    [extra] = fixes["QCB203"]
    assert extra.new_text == "" and (extra.range.start.character,
                                     extra.range.end.character) == (23, 25)
    [dup] = fixes["QCB202"]
    assert dup.new_text == "" and (dup.range.start.line, dup.range.end.line) == (3, 4)
    close(client, uri)


async def completions(client: LanguageClient, uri: str, line: int, character: int) -> list[str]:
    result = await client.text_document_completion_async(t.CompletionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=t.Position(line=line, character=character)))
    assert isinstance(result, t.CompletionList)
    assert all(i.documentation for i in result.items)
    return [i.label for i in result.items]


async def test_completion_at_each_position_kind(client: LanguageClient, farm: Path) -> None:
    text = ("ok.py = done-job-render\n"
            "\n"
            "ok.py = \n"
            "ok.py = complete-\n"
            "ok.py = complete-work-\n"
            "ok.py = complete-work-self-\n"
            "ok.py = complete-job-self \n")
    uri = open_doc(client, farm / "complete.conf", text)
    await fresh_diagnostics(client, uri)
    files = await completions(client, uri, 1, 0)
    assert "extra.pl" in files and "mail.qcb" in files and "ok.py" not in files
    names = await completions(client, uri, 2, 8)
    assert {"complete", "done", "failed", "globaltime-"} <= set(names)
    assert await completions(client, uri, 3, 17) == [
        "job", "subjob", "work", "host", "time", "repeat", "global", "globaltime",
        "globalrepeat"]
    contexts = await completions(client, uri, 4, 22)
    assert contexts[:2] == ["self", "parent"] and "render" in contexts
    assert await completions(client, uri, 5, 27) == ["*"]
    assert await completions(client, uri, 6, 26) == ["&&", "||", "and", "or"]
    close(client, uri)

    q = open_doc(client, farm / "mail.qcb", "mail-status\nkill-\n", language="qcb")
    commands = await completions(client, q, 1, 5)
    assert "kill-self" in commands and "unblock-subjob-self-single" in commands
    close(client, q)


async def hover_text(client: LanguageClient, uri: str, line: int, character: int) -> str:
    result = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=t.Position(line=line, character=character)))
    assert result is not None and isinstance(result.contents, t.MarkupContent)
    return result.contents.value


async def test_hover_definition_symbols_and_formatting(client: LanguageClient,
                                                       farm: Path) -> None:
    text = "ok.py   =   done-job-PARENT   &&   complete-work-self-*\n#end\n"
    uri = open_doc(client, farm / "hover.conf", text)
    await fresh_diagnostics(client, uri)
    assert "complete, failed or killed" in await hover_text(client, uri, 0, 13)
    assert "parent job" in await hover_text(client, uri, 0, 23)
    assert "work item" in await hover_text(client, uri, 0, 46)
    script = await hover_text(client, uri, 0, 1)
    assert "python script" in script and "notify the wrangler" in script

    location = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=t.Position(line=0,
                                                                            character=2)))
    assert isinstance(location, t.Location) and location.uri == uri_of(farm / "ok.py")

    symbols = await client.text_document_document_symbol_async(t.DocumentSymbolParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert symbols is not None and [s.name for s in symbols] == ["ok.py"]

    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        options=t.FormattingOptions(tab_size=4, insert_spaces=True)))
    assert edits is not None and len(edits) == 1
    assert edits[0].new_text == "ok.py = done-job-parent && complete-work-self-*\n#end\n"

    tokens = await client.text_document_semantic_tokens_full_async(t.SemanticTokensParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert tokens is not None
    data = list(tokens.data)
    # file, name, type, context, operator, name, type, context, extra, comment
    assert data[3::5] == [0, 1, 2, 3, 5, 1, 2, 3, 4, 6]
    assert data[4::5] == [0, 1, 1, 1, 0, 1, 1, 1, 0, 0]  # built-ins are marked
    assert data[:5] == [0, 0, 5, 0, 0]  # `ok.py` is a string token at 0:0, 5 long
    close(client, uri)


async def test_utf16_positions_on_a_non_ascii_line(client: LanguageClient, farm: Path) -> None:
    name = "r\u00e9nd\u00e9r\U0001f3ac.py"  # 10 code points, 11 UTF-16 units
    uri = open_doc(client, farm / "utf16.conf", f"{name} = compelte-job-slef\n")
    diags = sorted(await fresh_diagnostics(client, uri), key=lambda d: d.range.start.character)
    assert [(d.code, d.range.start.character, d.range.end.character) for d in diags] == [
        ("QCB220", 14, 22), ("QCB221", 27, 31)]
    assert "job label" in await hover_text(client, uri, 0, 27)
    script = await hover_text(client, uri, 0, 9)  # inside the file name, after the emoji
    assert "python script" in script
    names = await completions(client, uri, 0, 13)
    assert "complete" in names
    close(client, uri)



async def test_hostile_text_gets_diagnostics_and_the_server_keeps_answering(
        client: LanguageClient, farm: Path) -> None:
    text = ("\x00bad = done-job-self\n" + "ok.py = " + "(" * 5000 + "done-job-self\n"
            + "ok.py = done-job-" + "x" * 100_000 + "\n" + "=\n" + "ok.py = done-job-\u200b\n")
    uri = open_doc(client, farm / "hostile.conf", text)
    diags = await fresh_diagnostics(client, uri)
    assert {d.range.start.line for d in diags} >= {0, 1, 3}
    assert all(d.severity == t.DiagnosticSeverity.Error for d in diags if d.range.start.line < 4)
    assert [str(d.code) for d in diags if d.range.start.line == 4] == ["QCB223"]
    assert "self" in await completions(client, uri, 4, 17)
    q = open_doc(client, farm / "hostile.qcb", "\x00\nkill-self \udcff\n" * 3, language="qcb")
    assert {str(d.code) for d in await fresh_diagnostics(client, q)} <= {"QCB301", "QCB302"}
    close(client, uri)
    close(client, q)


async def test_qcb_file_diagnostics_fix_symbols_and_tokens(client: LanguageClient,
                                                           farm: Path) -> None:
    uri = open_doc(client, farm / "fix.qcb", "# on failure\nkil-self\nmail-status # tell\n",
                   language="qcb")
    [diag] = await fresh_diagnostics(client, uri)
    assert (diag.code, diag.range.start.line, diag.range.start.character,
            diag.range.end.character) == ("QCB301", 1, 0, 8)
    actions = await client.text_document_code_action_async(t.CodeActionParams(
        text_document=t.TextDocumentIdentifier(uri=uri), range=diag.range,
        context=t.CodeActionContext(diagnostics=[diag])))
    assert actions is not None
    [action] = actions
    assert isinstance(action, t.CodeAction) and action.edit and action.edit.changes
    assert [e.new_text for e in action.edit.changes[uri]] == ["kill-self"]
    symbols = await client.text_document_document_symbol_async(t.DocumentSymbolParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert symbols is not None and [s.name for s in symbols] == ["kil-self", "mail-status"]
    tokens = await client.text_document_semantic_tokens_full_async(t.SemanticTokensParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert tokens is not None and list(tokens.data)[3::5] == [6, 7, 7, 6]
    assert "mail the job's status" in await hover_text(client, uri, 2, 3)
    close(client, uri)


async def test_script_errors_go_to_the_script_and_clear(client: LanguageClient,
                                                        farm: Path) -> None:
    bad = farm / "broken_script.py"
    bad.write_text("def f(:\n")
    bad.chmod(0o644)
    uri = open_doc(client, farm / "scripts.conf", "broken_script.py = done-job-self\n")
    script_uri = uri_of(bad)
    client.diagnostics.pop(script_uri, None)
    await fresh_diagnostics(client, uri)
    async with asyncio.timeout(30):
        while script_uri not in client.diagnostics:
            await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [syntax] = client.diagnostics[script_uri]
    assert syntax.code == "QCB401" and syntax.range.start.line == 0
    change(client, uri, 2, "ok.py = done-job-self\n")
    assert await fresh_diagnostics(client, uri) == []
    async with asyncio.timeout(30):
        while client.diagnostics.get(script_uri):
            await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    close(client, uri)
