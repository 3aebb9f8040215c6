"""``sqlsafe lsp``: run the language server on stdin/stdout (``sqlsafe.lsp``)."""

from __future__ import annotations

import importlib.util

import click

from ..cli import fail


@click.command("lsp")
def command() -> None:
    """Run the language server on stdin/stdout, for editors: diagnostics as you type, judged
    within the migration set, and quick fixes (needs: pip install 'sqlsafe[lsp]')."""
    if importlib.util.find_spec("pygls") is None:
        fail("the language server needs pygls: pip install 'sqlsafe[lsp]'")
    from ..lsp import serve

    serve()
