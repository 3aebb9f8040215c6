"""``sqlsafe lsp``: the linter as a language server, for editors (squawk has one; so do we).

The server speaks the Language Server Protocol on stdin/stdout through pygls (the ``lsp``
extra). Each time a SQL document is opened, changed or saved it lints the migration set the
file belongs to, with the editor's text standing in for the file's, and publishes the
findings of that file as diagnostics: so a CREATE INDEX is judged knowing the table was created
three migrations earlier, as ``sqlsafe lint`` judges it. Safe fixes are offered as quick fixes.

The set is the file's directory, or for layouts with one directory per migration
(``<version>/migration.sql``, ``<version>/up.sql``) the directory above; configuration is
found from the file as the command line finds it. Positions go to the client in the code
units it negotiated (UTF-16 by default), through pygls's position codec.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, load_config
from .discover import discover
from .lint import lint
from .model import DiscoveryResult, Finding, Migration, Section, Span
from .parse import LineIndex

# File names that mean "one directory per migration": the set is the directory above.
_PER_DIRECTORY = frozenset({"migration.sql", "up.sql", "down.sql"})
_SEVERITY = {"error": 1, "warning": 2, "info": 3}  # lsprotocol.types.DiagnosticSeverity
# How long typing must pause before a change is linted (open and save lint at once).
CHANGE_DELAY_S = 0.25


def set_root(path: str) -> str:
    """The directory whose discovery gives the set ``path`` belongs to."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) in _PER_DIRECTORY:
        return os.path.dirname(parent)
    return parent


def lint_buffer(path: str, text: str) -> list[Finding]:
    """The findings for ``path`` when its text is ``text``, linted within its set. Raises
    ConfigError for a broken configuration."""
    abspath = os.path.abspath(path)
    config: Config = load_config(None, Path(abspath).parent)
    disc = discover([set_root(abspath)], layout=config.layout,
                    assume_in_transaction=config.assume_in_transaction,
                    overlay={abspath: text})
    own = [m for m in disc.migrations if m.abspath == abspath]
    if not own:
        # Not part of a set on disk (unsaved, a down migration, another layout): alone.
        section = Section(abspath, text)
        disc = DiscoveryResult((Migration(abspath, abspath, "file", None,
                                          os.path.basename(abspath), section),))
        own = list(disc.migrations)
    path_shown = own[0].path
    result = lint(disc, config)
    return [f for f in result.findings if f.path == path_shown]


def _client_range(span: Span, lines: Sequence[str], codec: Any, *, widen: bool = False) -> Any:
    """A span (1-based, in characters) as an LSP range in the client's code units; ``widen``
    makes an empty range one character wide (an editor shows nothing for an empty one)."""
    from lsprotocol import types

    start = types.Position(line=span.line - 1, character=span.column - 1)
    end = types.Position(line=span.end_line - 1, character=span.end_column - 1)
    if widen and (end.line, end.character) <= (start.line, start.character):
        end = types.Position(line=start.line, character=start.character + 1)
    return codec.range_to_client_units(lines, types.Range(start=start, end=end))


def _diagnostic(f: Finding, lines: Sequence[str], codec: Any) -> Any:
    from lsprotocol import types

    message = f.message + (f"\n{f.help}" if f.help else "")
    return types.Diagnostic(
        range=_client_range(f.span, lines, codec, widen=True),
        message=message, severity=types.DiagnosticSeverity(_SEVERITY.get(f.severity, 3)),
        code=f.code, source="sqlsafe", data={"rule": f.rule})


def build_server() -> Any:
    """The pygls server with sqlsafe's features registered (imported only for ``lsp``)."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer
    from pygls.uris import to_fs_path

    from . import __version__

    server = LanguageServer("sqlsafe", __version__,
                            text_document_sync_kind=types.TextDocumentSyncKind.Full)
    findings: dict[str, list[Finding]] = {}

    def check(uri: str) -> None:
        path = to_fs_path(uri)
        doc = server.workspace.get_text_document(uri)
        if path is None or not path.endswith(".sql"):
            return
        try:
            found = lint_buffer(path, doc.source)
        except ConfigError as exc:
            server.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error, message=f"sqlsafe: {exc}"))
            found = []
        findings[uri] = found
        lines = doc.lines
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=doc.version,
            diagnostics=[_diagnostic(f, lines, doc.position_codec) for f in found]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        check(params.text_document.uri)

    latest: dict[str, int] = {}

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(params: types.DidChangeTextDocumentParams) -> None:
        # Typing sends a change per keystroke, and a lint covers the whole set: lint once the
        # typing pauses, for the newest version only.
        uri, version = params.text_document.uri, params.text_document.version
        latest[uri] = version
        await asyncio.sleep(CHANGE_DELAY_S)
        if latest.get(uri) == version:
            check(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        check(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        findings.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=params.text_document.uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix]))
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        doc = server.workspace.get_text_document(uri)
        lines, codec = doc.lines, doc.position_codec
        first, last = params.range.start.line + 1, params.range.end.line + 1
        index = LineIndex(doc.source)  # fix offsets count characters of the whole file
        actions = []
        for f in findings.get(uri, []):
            if f.fix is None or not f.fix.safe:
                continue  # an unsafe edit needs a human (e.g. CONCURRENTLY inside BEGIN)
            if f.span.end_line < first or f.span.line > last:
                continue
            edit_range = _client_range(index.span(f.fix.start, f.fix.end), lines, codec)
            actions.append(types.CodeAction(
                title=f"{f.fix.description} ({f.code})", kind=types.CodeActionKind.QuickFix,
                diagnostics=[_diagnostic(f, lines, codec)], is_preferred=True,
                edit=types.WorkspaceEdit(changes={uri: [
                    types.TextEdit(range=edit_range, new_text=f.fix.replacement)]})))
        return actions

    return server


def serve() -> None:
    build_server().start_io()
