"""`qbcallbacks check [PATH ...] [--format text|json]`: validate callback directories.

Exit status: 0 when there is no error (warnings allowed), 1 when there is one, 2 on a usage
error. With `--format json` the output is one JSON array of diagnostic objects.
"""

from __future__ import annotations

import json

import click

from ..config.load import expand_callback_path, load_callback_path
from ..errors import Diagnostic


def report(diagnostics: tuple[Diagnostic, ...], fmt: str) -> None:
    """Print diagnostics as text (with carets) or as the JSON array of the contract."""
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in diagnostics], indent=2))
        return
    for d in diagnostics:
        click.echo(d.render(), err=False)


@click.command("check")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--compile-perl", is_flag=True,
              help="Also compile Perl scripts with `perl -c`. This RUNS their BEGIN blocks and "
                   "`use` statements; without it nothing in any script runs.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], fmt: str, compile_perl: bool) -> None:
    """Check callback directories: callbacks.conf, triggers and the scripts they name.

    Each PATH is a callback directory or a comma-separated list of them; with none,
    $QBDIR/callback. No code of the scripts is run (Perl is parsed statically) unless
    --compile-perl is given.
    """
    loaded = load_callback_path(paths, compile_perl=compile_perl)
    diagnostics = loaded.diagnostics
    report(diagnostics, fmt)
    errors = sum(d.severity == "error" for d in diagnostics)
    if fmt == "text":
        warnings = len(diagnostics) - errors
        dirs = expand_callback_path(paths)
        click.echo(f"{len(loaded.rules)} callback(s) loaded from {len(dirs)} director"
                   f"{'y' if len(dirs) == 1 else 'ies'}; {errors} error(s), {warnings} warning(s)",
                   err=True)
    ctx.exit(1 if errors else 0)
