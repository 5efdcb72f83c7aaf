"""`qbcallbacks format FILE [--check]`: print the canonical rendering of a file.

`callbacks.conf` (or any file not ending in `.qcb`) is read as a config, `.qcb` as a program.
With `--check`, nothing is printed and the exit status is 1 when the file is not canonical.
A file with errors is not formatted: its diagnostics are printed and the exit status is 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import SourceError
from ..lang import parse_config, parse_qcb
from ..lang.source import read_source_file
from ..runtimes.api import runtime_classes


@click.command("format")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Exit 1 if FILE is not canonical; print nothing.")
@click.pass_context
def command(ctx: click.Context, file: Path, check: bool) -> None:
    """Render a callbacks.conf or .qcb file canonically."""
    if not os.path.lexists(file):
        raise click.UsageError(f"cannot read {file}: No such file or directory")
    try:
        text = read_source_file(file)  # regular files only, within the size limits
    except SourceError as exc:
        for d in exc.diagnostics:
            click.echo(d.render(), err=True)
        ctx.exit(1)
    if file.suffix.lower() == ".qcb":
        parsed_q = parse_qcb(text, str(file))
        diags, canonical = parsed_q.diagnostics, parsed_q.program
    else:
        extensions = tuple(f".{ext}" for ext in runtime_classes())  # site runtimes count too
        parsed_c = parse_config(text, str(file), extensions)
        diags, canonical = parsed_c.diagnostics, parsed_c.document  # type: ignore[assignment]
    if canonical is None:
        for d in diags:
            click.echo(d.render(), err=True)
        ctx.exit(1)
        return
    rendered = canonical.format()
    if check:
        ctx.exit(0 if rendered == text else 1)
    click.echo(rendered, nl=False)
