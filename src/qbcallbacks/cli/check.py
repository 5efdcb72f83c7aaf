"""`qbcallbacks check [PATH ...]`: validate callback directories, as a linter would.

Exit status: 0 when there is no error (warnings allowed), 1 when there is one (or a warning with
`--warnings-as-errors`; never with `--exit-zero`), 2 on a usage error. `--format json` (alias of
`--output-format json`) prints one JSON array of diagnostic objects.
"""

from __future__ import annotations

import sys

import click

from ..errors import Diagnostic
from ._targets import Checker, code_filter, default_dirs, noqa_filter, refuse_both
from .output import OUTPUT_FORMATS, render
from .output import statistics as statistics_text


def report(diagnostics: tuple[Diagnostic, ...], fmt: str) -> None:
    """Print diagnostics in one of the output formats."""
    click.echo(render(diagnostics, fmt), nl=False)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int, int, str, str]] = set()
    out = []
    for d in diagnostics:
        key = (d.file, d.line, d.column, d.code, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


@click.command("check")
@click.argument("paths", nargs=-1)
@click.option("--qbconf", type=click.Path(dir_okay=False), default=None,
              help="Check the directories of supervisor_universal_callback_path in this qb.conf.")
@click.option("--output-format", "--format", "fmt", type=click.Choice(OUTPUT_FORMATS),
              default="text", show_default=True, help="Output format (--format is an alias).")
@click.option("--stdin-filename", default=None, metavar="NAME",
              help="With PATH '-': the file standard input stands for.")
@click.option("--statistics", is_flag=True, help="Print counts by code instead of findings.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are errors.")
@click.option("--warnings-as-errors", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--select", multiple=True, metavar="CODE",
              help="Only these codes or prefixes (repeatable, comma-separated).")
@click.option("--ignore", multiple=True, metavar="CODE",
              help="Not these codes or prefixes (repeatable, comma-separated).")
@click.option("--compile-perl", is_flag=True,
              help="Also compile Perl scripts with `perl -c`. This RUNS their BEGIN blocks and "
                   "`use` statements; without it nothing in any script runs.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], qbconf: str | None, fmt: str,
            stdin_filename: str | None, statistics: bool, quiet: bool, exit_zero: bool,
            warnings_as_errors: bool, select: tuple[str, ...], ignore: tuple[str, ...],
            compile_perl: bool) -> None:
    """Check callback directories: callbacks.conf, triggers and the scripts they name.

    Each PATH is a callback directory, a callbacks.conf (its directory is checked), a script
    (checked in its directory; its own findings are reported), '-' for standard input, or a
    comma-separated list of directories. With none: the callback path of --qbconf, of $QB_CONF
    or /etc/qb.conf when present, else $QBDIR/callback. A PATH that does not exist is an error
    (QCB020). A callbacks.conf line ending in '# noqa' or '# noqa: QCB202' hides its findings.
    Columns count Unicode code points. No code of the scripts is run (Perl is parsed
    statically) unless --compile-perl is given.
    """
    refuse_both(paths, qbconf)
    if stdin_filename is not None and "-" not in paths:
        raise click.UsageError("--stdin-filename needs '-' among the paths")
    checker = Checker(compile_perl=compile_perl)
    if paths:
        for path in paths:
            if path == "-":
                checker.stdin(sys.stdin.buffer.read(), stdin_filename)
            else:
                checker.path(path)
    else:
        for directory in default_dirs(qbconf):
            checker.directory(directory)
    found = checker.out
    diagnostics = code_filter(noqa_filter(_unique(found.diagnostics), found.texts),
                              select, ignore)
    if statistics:
        click.echo(statistics_text(diagnostics), nl=False)
    else:
        report(tuple(diagnostics), fmt)
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if fmt in ("text", "concise") and not quiet:
        dirs = found.directories
        click.echo(f"{found.rules} callback(s) loaded from {dirs} director"
                   f"{'y' if dirs == 1 else 'ies'}; {errors} error(s), {warnings} warning(s)",
                   err=True)
    failed = errors + (warnings if warnings_as_errors else 0)
    ctx.exit(0 if exit_zero or not failed else 1)


