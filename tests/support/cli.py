"""The command line run inside the test process, as a subprocess would see it.

Each `qbcallbacks` process pays for importing click, pydantic and Lark again (most of a short
command's CPU); a test about what a command prints and returns runs it here through
`qbcallbacks.cli.main` instead, with its own standard streams, working directory and
environment, and gets the same `CompletedProcess` a subprocess run gives. Tests about the
process itself (signals, pipes, terminals, stdin framing, the installed script) start a real
one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from click.testing import CliRunner

from qbcallbacks.cli import main


@contextlib.contextmanager
def _in(cwd: Path | str | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def _overrides(env: Mapping[str, str] | None) -> dict[str, str | None]:
    """The environment `env` as changes to this process's: names it lacks are removed."""
    if env is None:
        return {}
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    return changes


def run_cli(*args: str | Path, cwd: Path | str | None = None,
            env: Mapping[str, str] | None = None, input: str | bytes | None = None,
            text: bool = True) -> subprocess.CompletedProcess:
    """Run `qbcallbacks ARGS` in this process; `env`, when given, is the whole environment
    (as for `subprocess.run`). Standard output and error are captured apart."""
    argv = [str(a) for a in args]
    runner = CliRunner()
    with _in(cwd), runner.isolation(input=input, env=_overrides(env)) as (out, err, _):
        code = main(argv)
    stdout, stderr = out.getvalue(), err.getvalue()
    if text:  # read back as `subprocess.run(..., text=True)` reads: universal newlines
        return subprocess.CompletedProcess(["qbcallbacks", *argv], code, _text(stdout),
                                           _text(stderr))
    return subprocess.CompletedProcess(["qbcallbacks", *argv], code, stdout, stderr)


def _text(data: bytes) -> str:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=None).read()
