"""`qbcallbacks format FILE...`: the canonical rendering of callbacks.conf and .qcb files.

`callbacks.conf` (or any file not ending in `.qcb`) is read as a config, `.qcb` as a program.
One FILE alone is printed to standard output; `--write` rewrites files in place (atomically),
`--diff` prints a unified diff and `--check` names each file that would change. Line ends are
kept (LF or CRLF, and a byte order mark) unless `--line-ending` says otherwise, so a CRLF file
that `check` accepts is canonical for `format --check` too. A file with errors is not
formatted: its diagnostics are printed and the exit status is 1.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path

import click

from ..errors import Diagnostic, SourceError
from ..lang import parse_config, parse_qcb
from ..lang.source import read_source_file
from ..model.languages import QCB_EXTENSION, extension_of
from ..runtimes.registry import extensions as runtime_extensions
from ._targets import SetupError

BOM = "\ufeff"


def canonical_text(text: str, file: str, line_ending: str = "keep",
                   ) -> tuple[str | None, tuple[Diagnostic, ...]]:
    """The canonical form of `text` with the requested line ends, or None and the errors."""
    if extension_of(file) == QCB_EXTENSION:
        parsed_q = parse_qcb(text, file)
        diags, canonical = parsed_q.diagnostics, parsed_q.program
    else:
        extensions = tuple(f".{ext}" for ext in runtime_extensions())  # site runtimes count too
        parsed_c = parse_config(text, file, extensions)
        diags, canonical = parsed_c.diagnostics, parsed_c.document  # type: ignore[assignment]
    if canonical is None:
        return None, tuple(diags)
    rendered = canonical.format().removeprefix(BOM)
    crlf = line_ending == "crlf" or (line_ending == "keep" and _uses_crlf(text))
    if crlf:
        rendered = rendered.replace("\n", "\r\n")
    if text.startswith(BOM):
        rendered = BOM + rendered
    return rendered, tuple(diags)


def _uses_crlf(text: str) -> bool:
    """The file's own convention: the end of its first line."""
    first = text.find("\n")
    return first > 0 and text[first - 1] == "\r"


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` by a complete new file (same mode); a crash leaves the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_stdout(path: Path) -> bool:
    """`format f > f`: the shell has already emptied f; refuse rather than print nothing."""
    try:
        out, this = os.fstat(sys.stdout.fileno()), path.stat()
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (this.st_dev, this.st_ino)


@click.command("format")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Name each file that would change; exit 1 if any.")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes; exit 1 if any.")
@click.option("--write", "-w", is_flag=True, help="Rewrite the files in place.")
@click.option("--line-ending", type=click.Choice(["keep", "lf", "crlf"]), default="keep",
              show_default=True, help="Line ends of the output.")
@click.pass_context
def command(ctx: click.Context, files: tuple[Path, ...], check: bool, diff: bool, write: bool,
            line_ending: str) -> None:
    """Render callbacks.conf and .qcb files canonically.

    One FILE alone is printed to standard output. --write rewrites each file in place,
    --diff prints a unified diff, --check names each file that would change. Exit status: 0,
    1 when a file has errors (or would change, with --check or --diff), 2 on usage errors.
    """
    if write and (check or diff):
        raise click.UsageError("--write cannot be combined with --check or --diff")
    if len(files) > 1 and not (write or check or diff):
        raise click.UsageError("several files need --write, --check or --diff")
    failed = False
    for file in files:
        if not (write or check or diff) and _is_stdout(file):
            raise click.UsageError(f"standard output is {file} itself (the shell has emptied "
                                   "it); use --write to format a file in place")
        if not os.path.lexists(file):
            raise SetupError(f"cannot read {file}: No such file or directory")
        try:
            text = read_source_file(file)  # regular files only, within the size limits
        except SourceError as exc:
            for d in exc.diagnostics:
                click.echo(d.render(), err=True)
            failed = True
            continue
        rendered, diags = canonical_text(text, str(file), line_ending)
        if rendered is None:
            for d in diags:
                click.echo(d.render(), err=True)
            failed = True
            continue
        changed = rendered != text
        if not (write or check or diff):
            click.echo(rendered, nl=False)
        if check and changed:
            click.echo(f"would reformat {file}")
            failed = True
        if diff and changed:
            click.echo("".join(difflib.unified_diff(
                text.splitlines(keepends=True), rendered.splitlines(keepends=True),
                fromfile=f"{file}", tofile=f"{file} (formatted)")), nl=False)
            failed = True
        if write and changed:
            _write_atomically(file, rendered)
            click.echo(f"reformatted {file}", err=True)
    ctx.exit(1 if failed else 0)
