"""`check --watch`: check, then check again each time a file under the checked paths changes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import click


def watched(paths: Sequence[str]) -> list[str]:
    """The directories to watch for `paths`: a file's own directory (editors and `--fix`
    replace files by renaming, which a watch on the file itself would miss), a directory as it
    is, a comma-separated list part by part; paths that do not exist are left out."""
    out: list[str] = []
    for spec in paths:
        parts = [spec] if os.path.lexists(spec) or "," not in spec else spec.split(",")
        for part in (p.strip() for p in parts if p.strip()):
            path = os.path.abspath(os.path.expanduser(os.path.expandvars(part)))
            target = path if os.path.isdir(path) else os.path.dirname(path)
            if os.path.isdir(target) and target not in out:
                out.append(target)
    return out


def watch_loop(run: Callable[[], object], paths: Sequence[str]) -> None:
    """Run `run` now and after every batch of changes, until interrupted."""
    from watchfiles import watch

    directories = watched(paths)
    if not directories:
        raise click.UsageError("--watch: none of the paths exists")
    run()
    _waiting()
    for _changes in watch(*directories, raise_interrupt=False):
        click.echo(f"[{time.strftime('%H:%M:%S')}] files changed, checking again", err=True)
        run()
        _waiting()


def _waiting() -> None:
    click.echo("watching for file changes (Ctrl-C to stop)", err=True)
