"""`qbcallbacks explain QCBnnn` (alias `rule`): what a diagnostic code means, why it matters and
how to fix it, from the table `spec/codes.md` is generated from."""

from __future__ import annotations

import click

from ..code_docs import explain
from ..errors import CODES


@click.command("explain")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every code with its meaning.")
def command(code: str | None, show_all: bool) -> None:
    """Explain diagnostic CODE (QCB103, or 103), or list every code with --all. Alias: rule."""
    if show_all or code is None:
        for name in sorted(CODES):
            click.echo(f"{name}  {CODES[name]}")
        return
    name = code.strip().upper()
    if name.isdigit():
        name = f"QCB{int(name):03d}"
    if name not in CODES:
        raise click.BadParameter(f"unknown code {code!r}; `qbcallbacks explain --all` lists "
                                 "them", param_hint="CODE")
    click.echo(explain(name), nl=False)
