"""`qbcallbacks lsp`: the language server for callbacks.conf and .qcb files, over stdio.

Needs the `lsp` extra (pygls and lsprotocol); without it the command says how to install it.
"""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Speak over stdin/stdout (the default and only "
              "transport; accepted because editors pass it).")
def command(stdio: bool) -> None:
    """Run the language server over stdin/stdout."""
    try:
        from ..lsp.server import serve
    except ImportError as exc:  # pragma: no cover - the dev extra installs pygls
        raise click.ClickException(f"the language server needs pygls ({exc}); install "
                                   "qbcallbacks[lsp]") from exc
    serve()
