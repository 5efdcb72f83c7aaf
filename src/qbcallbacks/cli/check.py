"""`qbcallbacks check [PATH ...]`: validate callback directories, as a linter would.

Exit status: 0 when there is no error (warnings allowed), 1 when there is one (or a warning with
`--warnings-as-errors`; never with `--exit-zero`), 2 on a usage error. `--format json` (alias of
`--output-format json`) prints one JSON array of diagnostic objects.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

import click

from ..errors import Diagnostic
from ._targets import Checker, Collected, code_filter, default_dirs, noqa_filter, refuse_both
from .output import OUTPUT_FORMATS, colour_wanted, render
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


class _Options(NamedTuple):
    paths: tuple[str, ...]
    qbconf: str | None
    stdin_filename: str | None
    select: tuple[str, ...]
    ignore: tuple[str, ...]
    compile_perl: bool
    config: str | None
    isolated: bool


def _collect(o: _Options) -> tuple[list[Diagnostic], Collected]:
    """One check of every target, filtered by noqa comments, settings files and options."""
    checker = Checker(compile_perl=o.compile_perl)
    if o.paths:
        for path in o.paths:
            if path == "-":
                checker.stdin(sys.stdin.buffer.read(), o.stdin_filename)
            else:
                checker.path(path)
    else:
        for directory in default_dirs(o.qbconf):
            checker.directory(directory)
    found = checker.out
    kept = noqa_filter(_unique(found.diagnostics), found.texts)
    if not kept or (o.isolated and o.config is None):  # no settings file to look for
        return code_filter(kept, o.select, o.ignore), found
    from ._settings import Resolver, wanted

    resolver = Resolver(config=o.config, isolated=o.isolated)
    return [d for d in kept if wanted(d.code, resolver.for_file(d.file), o.select, o.ignore,
                                      d.file)], found


def _fixed(o: _Options, unsafe: bool) -> tuple[list[Diagnostic], Collected, int]:
    """Fix, check again, and repeat while fixes apply (one fix can reveal another, as a
    corrected trigger can make its line a duplicate); at most ten rounds."""
    from ._fix import fix_files

    total = 0
    for _ in range(10):
        diagnostics, found = _collect(o)
        applied = fix_files(diagnostics, unsafe=unsafe)
        if not applied:
            break
        total += applied
    else:
        diagnostics, found = _collect(o)
    return diagnostics, found, total


def _emit(diagnostics: list[Diagnostic], fmt: str, statistics: bool,
          output_file: str | None) -> None:
    colour = False
    if statistics:
        text = statistics_text(diagnostics)
    else:
        colour = output_file is None and colour_wanted(sys.stdout, os.environ)
        text = render(tuple(diagnostics), fmt, colour=colour)
    if output_file is None:
        click.echo(text, nl=False, color=colour)  # click would strip colours off a pipe
        return
    path = Path(output_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _once(o: _Options, fmt: str, statistics: bool, quiet: bool, output_file: str | None,
          fix: bool, unsafe_fixes: bool) -> tuple[int, int]:
    """Check (fixing first when asked), print, and return the errors and warnings left."""
    if fix:
        diagnostics, found, fixed = _fixed(o, unsafe_fixes)
    else:
        (diagnostics, found), fixed = _collect(o), 0
    _emit(diagnostics, fmt, statistics, output_file)
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    if fmt in ("text", "concise") and not quiet:
        dirs = found.directories
        done = f"; {fixed} fixed" if fix else _fix_hint(diagnostics)
        click.echo(f"{found.rules} callback(s) loaded from {dirs} director"
                   f"{'y' if dirs == 1 else 'ies'}; {errors} error(s), {warnings} warning(s)"
                   f"{done}", err=True)
    return errors, warnings


def _fix_hint(diagnostics: list[Diagnostic]) -> str:
    """What `--fix` (and `--unsafe-fixes`) would repair, as ruff's summary says it."""
    if not diagnostics:
        return ""
    from ._fix import fixable_counts

    safe, unsafe = fixable_counts(diagnostics)
    parts = ([f"{safe} fixable with --fix"] if safe else []) + (
        [f"{unsafe} more with --unsafe-fixes"] if unsafe else [])
    return f"; {', '.join(parts)}" if parts else ""


@click.command("check")
@click.argument("paths", nargs=-1)
@click.option("--qbconf", type=click.Path(dir_okay=False), default=None,
              help="Check the directories of supervisor_universal_callback_path in this qb.conf.")
@click.option("--output-format", "--format", "fmt", type=click.Choice(OUTPUT_FORMATS),
              default="text", show_default=True, help="Output format (--format is an alias).")
@click.option("-o", "--output-file", default=None, metavar="FILE",
              help="Write the findings to FILE instead of standard output.")
@click.option("--stdin-filename", default=None, metavar="NAME",
              help="With PATH '-': the file standard input stands for.")
@click.option("--statistics", is_flag=True, help="Print counts by code instead of findings.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are errors.")
@click.option("--warnings-as-errors", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--select", multiple=True, metavar="CODE",
              help="Only these codes or prefixes (repeatable, comma-separated); replaces the "
                   "settings file's select.")
@click.option("--ignore", multiple=True, metavar="CODE",
              help="Not these codes or prefixes (repeatable, comma-separated); added to the "
                   "settings file's ignore.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes to the files, then report "
                                          "what is left.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix, also apply fixes that change what fires.")
@click.option("--config", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help="Read settings from FILE (pyproject.toml or qbcallbacks.toml) for every path.")
@click.option("--isolated", is_flag=True, help="Read no settings file.")
@click.option("--watch", "-w", is_flag=True,
              help="Check again whenever a file under the checked paths changes.")
@click.option("--staged", is_flag=True,
              help="Check the callback directories that hold a change staged in git "
                   "(deletions included); with nothing staged, every one git tracks.")
@click.option("--compile-perl", is_flag=True,
              help="Also compile Perl scripts with `perl -c`. This RUNS their BEGIN blocks and "
                   "`use` statements; without it nothing in any script runs.")
@click.pass_context
def command(ctx: click.Context, paths: tuple[str, ...], qbconf: str | None, fmt: str,
            output_file: str | None, stdin_filename: str | None, statistics: bool,
            quiet: bool, exit_zero: bool, warnings_as_errors: bool, select: tuple[str, ...],
            ignore: tuple[str, ...], fix: bool, unsafe_fixes: bool, config: str | None,
            isolated: bool, watch: bool, staged: bool, compile_perl: bool) -> None:
    """Check callback directories: callbacks.conf, triggers and the scripts they name.

    Each PATH is a callback directory, a callbacks.conf (its directory is checked), a script
    (checked in its directory; its own findings are reported), '-' for standard input, or a
    comma-separated list of directories. With none: the callback path of --qbconf, of $QB_CONF
    or /etc/qb.conf when present, else $QBDIR/callback. A PATH that does not exist is an error
    (QCB020). A callbacks.conf line ending in '# noqa' or '# noqa: QCB202' hides its findings.
    Settings (select, ignore, per-file-ignores) come from the nearest pyproject.toml with a
    [tool.qbcallbacks] table, else qbcallbacks.toml. Columns count Unicode code points. No
    code of the scripts is run (Perl is parsed statically) unless --compile-perl is given.
    """
    refuse_both(paths, qbconf)
    if staged:
        if paths or qbconf:
            raise click.UsageError("--staged finds its directories: give no PATH or --qbconf")
        from ._git import staged_directories

        paths = tuple(staged_directories())
        if not paths:
            ctx.exit(0)
    if stdin_filename is not None and "-" not in paths:
        raise click.UsageError("--stdin-filename needs '-' among the paths")
    if "-" in paths and (fix or watch):
        raise click.UsageError("--fix and --watch need files, not standard input ('-')")
    if unsafe_fixes and not fix:
        raise click.UsageError("--unsafe-fixes needs --fix")
    if config is not None and isolated:
        raise click.UsageError("--config and --isolated contradict each other")
    o = _Options(paths, qbconf, stdin_filename, select, ignore, compile_perl, config, isolated)
    if watch:
        from ._watch import watch_loop

        watch_loop(lambda: _once(o, fmt, statistics, quiet, output_file, fix, unsafe_fixes),
                   [*paths, *([config] if config else [])] or default_dirs(qbconf))
        ctx.exit(0)
    errors, warnings = _once(o, fmt, statistics, quiet, output_file, fix, unsafe_fixes)
    failed = errors + (warnings if warnings_as_errors else 0)
    ctx.exit(0 if exit_zero or not failed else 1)
