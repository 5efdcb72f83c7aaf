"""The protocol side of the language server, on pygls and lsprotocol.

Handlers convert positions between the client's encoding (negotiated by pygls: UTF-16 unless
the client offers UTF-8 or UTF-32) and str columns, and call the plain functions of
`analysis`, `features` and `edits`. Diagnostics after a change wait for a short pause in
typing (`debounce` seconds, 0.15 by default, settable in initializationOptions).

The server stays responsive whatever the documents: diagnostics and semantic tokens are
computed on one analysis thread, off the thread that reads requests, so a hover is answered
while a large document is analysed; a document over `check`'s size limit gets only the size
diagnostic and no tokens, outline or formatting; requests about documents that are not open
are answered from nothing (the file on disk is never read in their place); a file the server
reads itself (a script) is read only as `check` would: a regular file within its limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path
from pygls.workspace import TextDocument

from ..errors import Diagnostic, SourceError
from ..lang.outline import LineOutline, outline_config, outline_qcb
from ..lang.source import read_source_file
from .analysis import Analyzer, DocKind, buffer_too_big, document_kind
from .edits import TOKEN_MODIFIERS, TOKEN_TYPES, code_action_edits, format_edit, semantic_data
from .features import complete, definition, hover
from .protocol import QbProtocol

log = logging.getLogger("qbcallbacks.lsp")

_ITEM_KINDS = {
    "file": t.CompletionItemKind.File, "name": t.CompletionItemKind.Event,
    "type": t.CompletionItemKind.Keyword, "context": t.CompletionItemKind.Variable,
    "extra": t.CompletionItemKind.Value, "operator": t.CompletionItemKind.Operator,
    "command": t.CompletionItemKind.Function,
}


class QbServer(LanguageServer):
    """A pygls server that remembers the analyzer, pending runs and published URIs."""

    def __init__(self) -> None:
        super().__init__("qbcallbacks", "0.1.0", protocol_cls=QbProtocol)
        self.analyzer = Analyzer()
        #: One thread for the heavy work (diagnostics, tokens), in the order it was asked for.
        self.analysis = ThreadPoolExecutor(max_workers=1,
                                           thread_name_prefix="qbcallbacks-analysis")
        self.tasks: set[asyncio.Task[None]] = set()
        self.debounce = 0.15
        self.pending: dict[str, asyncio.TimerHandle] = {}
        #: Script URIs that got diagnostics on behalf of a document, to clear them later.
        self.published: dict[str, set[str]] = {}

    def report_server_error(self, error: Exception, source: Any) -> None:
        if not (isinstance(self.protocol, QbProtocol) and self.protocol.answer_unparsed(error)):
            super().report_server_error(error, source)  # not a parse error: pygls shows it


def _kind(doc: TextDocument) -> DocKind | None:
    return document_kind(doc.path, doc.language_id)


def _document(ls: QbServer, uri: str) -> TextDocument | None:
    """The open document at `uri`, or None: a document that is not open is never read from
    disk in its place (the file may be a FIFO, or huge)."""
    found: TextDocument | None = ls.workspace.text_documents.get(unquote(uri))
    return found


def _usable(doc: TextDocument) -> DocKind | None:
    """The document's kind when it may be analysed: None for other files and for documents
    over `check`'s size limit (those get only the size diagnostic)."""
    kind = _kind(doc)
    if kind is None or buffer_too_big(doc.path, doc.source, kind) is not None:
        return None
    return kind


def _directory(doc: TextDocument) -> str | None:
    if urlparse(doc.uri).scheme != "file":
        return None
    directory = os.path.dirname(doc.path)
    return directory if os.path.isdir(directory) else None


_OUTLINES: dict[str, tuple[int | None, tuple[LineOutline, ...]]] = {}


def _outline(doc: TextDocument, kind: DocKind) -> tuple[LineOutline, ...]:
    """The document's outline, kept per version: completion and hover ask for it often."""
    cached = _OUTLINES.get(doc.uri)
    if cached is not None and cached[0] == doc.version and doc.version is not None:
        return cached[1]
    outline = outline_qcb(doc.source) if kind == "qcb" else outline_config(doc.source)
    _OUTLINES[doc.uri] = (doc.version, outline)
    return outline


_LINES: dict[str, tuple[str, Sequence[str]]] = {}


def _lines(doc: TextDocument) -> Sequence[str]:
    """The document's lines, split once per text (pygls splits the whole text on each use)."""
    source = doc.source
    cached = _LINES.get(doc.uri)
    if cached is not None and cached[0] is source:
        return cached[1]
    lines = tuple(source.splitlines(True))
    _LINES[doc.uri] = (source, lines)
    return lines


def _bom(doc: TextDocument, line: int) -> int:
    """Columns of line 0 count from after a byte order mark, as the parsers' do."""
    return 1 if line == 0 and doc.source.startswith("\ufeff") else 0


def to_client(doc: TextDocument, line: int, column: int) -> t.Position:
    """A 0-based str position (BOM excluded) in the client's units."""
    return doc.position_codec.position_to_client_units(
        _lines(doc), t.Position(line=line, character=column + _bom(doc, line)))


def from_client(doc: TextDocument, pos: t.Position) -> tuple[int, int]:
    p = doc.position_codec.position_from_client_units(
        _lines(doc), t.Position(line=pos.line, character=pos.character))
    return p.line, max(0, p.character - _bom(doc, p.line))


def _range(lines: Sequence[str], d: Diagnostic, doc: TextDocument | None) -> t.Range:
    start = (d.line - 1, d.column - 1)
    end = (d.end_line - 1, d.end_column - 1)
    if doc is not None:
        return t.Range(start=to_client(doc, *start), end=to_client(doc, *end))
    codec = server.workspace.position_codec
    return t.Range(
        start=codec.position_to_client_units(lines, t.Position(line=start[0],
                                                               character=start[1])),
        end=codec.position_to_client_units(lines, t.Position(line=end[0], character=end[1])))


def to_lsp(d: Diagnostic, doc: TextDocument | None, lines: Sequence[str] = ()) -> t.Diagnostic:
    return t.Diagnostic(
        range=_range(lines, d, doc), message=d.message, code=d.code, source="qbcallbacks",
        severity=(t.DiagnosticSeverity.Error if d.severity == "error"
                  else t.DiagnosticSeverity.Warning))


server = QbServer()


def _script_lines(file: str) -> list[str]:
    """A named script's lines, to place its diagnostics; none unless it is a regular file
    within its size limit."""
    try:
        return read_source_file(file, kind="script").splitlines(keepends=True)
    except SourceError:
        return []


Published = list[tuple[str, list[t.Diagnostic]]]


def _diagnostics(ls: QbServer, doc: TextDocument, source: str,
                 kind: DocKind) -> tuple[Published, set[str]]:
    """(target URI, diagnostics) of a document and of the scripts it names; on the analysis
    thread."""
    path = doc.path or doc.uri
    found = ls.analyzer.diagnose(path, source, kind)
    out: Published = []
    others: set[str] = set()
    for file, diags in found.items():
        if file == path:
            out.append((doc.uri, [to_lsp(d, doc) for d in diags]))
            continue
        target = from_fs_path(file) or file
        others.add(target)
        lines = _script_lines(file)
        out.append((target, [to_lsp(d, None, lines) for d in diags]))
    return out, others


def publish(ls: QbServer, uri: str) -> None:
    """Start computing the diagnostics of one open document; they are sent when ready."""
    ls.pending.pop(uri, None)
    task = asyncio.get_running_loop().create_task(_publish(ls, uri))
    ls.tasks.add(task)
    task.add_done_callback(ls.tasks.discard)


async def _publish(ls: QbServer, uri: str) -> None:
    doc = _document(ls, uri)
    kind = None if doc is None else _kind(doc)
    if doc is None or kind is None:
        return
    version, source = doc.version, doc.source
    try:
        found, others = await asyncio.get_running_loop().run_in_executor(
            ls.analysis, _diagnostics, ls, doc, source, kind)
    except Exception as exc:  # a fault of ours must not stop the server; say so and go on
        ls.window_log_message(t.LogMessageParams(
            type=t.MessageType.Error, message=f"qbcallbacks could not check {uri}: {exc!r}"))
        return
    if _document(ls, uri) is not doc or doc.version != version:
        return  # closed or changed meanwhile: the newer text has its own run
    for target, items in found:
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
            uri=target, diagnostics=items, version=version if target == uri else None))
    for gone in ls.published.get(uri, set()) - others:
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=gone,
                                                                        diagnostics=[]))
    ls.published[uri] = others


def schedule(ls: QbServer, uri: str, delay: float) -> None:
    old = ls.pending.pop(uri, None)
    if old is not None:
        old.cancel()
    if delay <= 0:
        publish(ls, uri)
        return
    ls.pending[uri] = asyncio.get_running_loop().call_later(delay, publish, ls, uri)


@server.feature(t.INITIALIZE)
def initialize(ls: QbServer, params: t.InitializeParams) -> None:
    opts = params.initialization_options
    if isinstance(opts, dict) and isinstance(opts.get("debounce"), int | float):
        ls.debounce = float(opts["debounce"])


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: QbServer, params: t.DidOpenTextDocumentParams) -> None:
    publish(ls, params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: QbServer, params: t.DidChangeTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, ls.debounce)


@server.feature(t.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: QbServer, params: t.DidSaveTextDocumentParams) -> None:
    schedule(ls, params.text_document.uri, 0)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: QbServer, params: t.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    _OUTLINES.pop(uri, None)
    _LINES.pop(uri, None)
    pending = ls.pending.pop(uri, None)
    if pending is not None:
        pending.cancel()
    for target in {uri, *ls.published.pop(uri, set())}:
        ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=target,
                                                                        diagnostics=[]))


@server.feature(t.TEXT_DOCUMENT_COMPLETION,
                t.CompletionOptions(trigger_characters=["-", "=", " ", "("]))
def completion(ls: QbServer, params: t.CompletionParams) -> t.CompletionList | None:
    doc = _document(ls, params.text_document.uri)
    kind = None if doc is None else _usable(doc)
    if doc is None or kind is None:
        return None
    line, col = from_client(doc, params.position)
    items = complete(kind, _outline(doc, kind), line, col, _directory(doc))
    end = params.position
    return t.CompletionList(is_incomplete=False, items=[
        t.CompletionItem(
            label=i.label, kind=_ITEM_KINDS[i.kind], detail=i.kind,
            documentation=t.MarkupContent(kind=t.MarkupKind.Markdown, value=i.doc),
            text_edit=t.TextEdit(range=t.Range(start=to_client(doc, line, i.start), end=end),
                                 new_text=i.label))
        for i in items])


@server.feature(t.TEXT_DOCUMENT_HOVER)
def on_hover(ls: QbServer, params: t.HoverParams) -> t.Hover | None:
    doc = _document(ls, params.text_document.uri)
    kind = None if doc is None else _usable(doc)
    if doc is None or kind is None:
        return None
    line, col = from_client(doc, params.position)
    found = hover(kind, _outline(doc, kind), line, col, _directory(doc))
    if found is None:
        return None
    text, piece = found
    return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text),
                   range=t.Range(start=to_client(doc, line, piece.start),
                                 end=to_client(doc, line, piece.end)))


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: QbServer, params: t.DefinitionParams) -> t.Location | None:
    doc = _document(ls, params.text_document.uri)
    if doc is None or _usable(doc) != "config":
        return None
    line, col = from_client(doc, params.position)
    path = definition(_outline(doc, "config"), line, col, _directory(doc))
    if path is None:
        return None
    zero = t.Position(line=0, character=0)
    return t.Location(uri=from_fs_path(path) or path, range=t.Range(start=zero, end=zero))


@server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def symbols(ls: QbServer, params: t.DocumentSymbolParams) -> list[t.DocumentSymbol]:
    doc = _document(ls, params.text_document.uri)
    kind = None if doc is None else _usable(doc)
    if doc is None or kind is None:
        return []
    out: list[t.DocumentSymbol] = []
    for ln in _outline(doc, kind):
        head = ln.first("file") if kind == "config" else ln.first("command")
        if head is None:
            continue
        line = ln.number - 1
        detail = ln.text[head.end:].strip(" \t").lstrip("=").strip(" \t") or None
        out.append(t.DocumentSymbol(
            name=head.text, detail=detail,
            kind=t.SymbolKind.File if kind == "config" else t.SymbolKind.Function,
            range=t.Range(start=to_client(doc, line, 0), end=to_client(doc, line, len(ln.text))),
            selection_range=t.Range(start=to_client(doc, line, head.start),
                                    end=to_client(doc, line, head.end))))
    return out


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: QbServer, params: t.DocumentFormattingParams) -> list[t.TextEdit]:
    doc = _document(ls, params.text_document.uri)
    kind = None if doc is None else _usable(doc)
    if doc is None or kind is None:
        return []
    new = format_edit(kind, doc.source)
    if new is None or new == doc.source:
        return []
    end = t.Position(line=len(_lines(doc)), character=0)
    return [t.TextEdit(range=t.Range(start=t.Position(line=0, character=0), end=end),
                       new_text=new)]


@server.feature(t.TEXT_DOCUMENT_CODE_ACTION,
                t.CodeActionOptions(code_action_kinds=[t.CodeActionKind.QuickFix]))
def code_actions(ls: QbServer, params: t.CodeActionParams) -> list[t.CodeAction]:
    doc = _document(ls, params.text_document.uri)
    out: list[t.CodeAction] = []
    if doc is None or _usable(doc) is None:
        return out
    for diag in params.context.diagnostics:
        if diag.source != "qbcallbacks" or not isinstance(diag.code, str):
            continue
        start = from_client(doc, diag.range.start)
        end = from_client(doc, diag.range.end)
        found = code_action_edits(doc.source, diag.code, diag.message, start, end)
        if found is None:
            continue
        title, (s, e, new_text) = found
        edit = t.TextEdit(range=t.Range(start=to_client(doc, *s), end=to_client(doc, *e)),
                          new_text=new_text)
        out.append(t.CodeAction(title=title, kind=t.CodeActionKind.QuickFix, diagnostics=[diag],
                                is_preferred=True,
                                edit=t.WorkspaceEdit(changes={doc.uri: [edit]})))
    return out


@server.feature(t.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                t.SemanticTokensLegend(token_types=list(TOKEN_TYPES),
                                       token_modifiers=list(TOKEN_MODIFIERS)))
async def semantic_tokens(ls: QbServer, params: t.SemanticTokensParams) -> t.SemanticTokens:
    doc = _document(ls, params.text_document.uri)
    kind = None if doc is None else _usable(doc)
    if doc is None or kind is None:
        return t.SemanticTokens(data=[])
    data = await asyncio.get_running_loop().run_in_executor(ls.analysis, _tokens, doc, kind)
    return t.SemanticTokens(data=data)


def _tokens(doc: TextDocument, kind: DocKind) -> list[int]:
    """The token data of a document, in client units; on the analysis thread."""
    codec = doc.position_codec
    lines = _lines(doc)
    return semantic_data(_outline(doc, kind), lambda line, col: codec.client_num_units(
        lines[line][:col + _bom(doc, line)]) if line < len(lines) else col)


def serve() -> None:
    """Speak the protocol over stdin/stdout until the client exits."""
    server.start_io()
