"""The `qbcallbacks` command line: one module per subcommand, loaded when used.

Each subcommand lives in `qbcallbacks.cli.<name>` and exposes a click command named `command`.
Loading lazily keeps `qbcallbacks check` fast: it never imports the runtimes' worker code, and
`qbcallbacks --version` answers before click (or anything else) is imported.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # `typing` is not imported for `--version` (see qbcallbacks/__init__)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

#: Subcommand name -> the module that defines it, imported only when the command runs.
COMMANDS: dict[str, str] = {
    "check": "qbcallbacks.cli.check",
    "format": "qbcallbacks.cli.fmt",
    "replay": "qbcallbacks.cli.replay",
    "simulate": "qbcallbacks.cli.simulate",
    "serve": "qbcallbacks.cli.serve",
    "history": "qbcallbacks.cli.history",
    "global": "qbcallbacks.cli.globals",
    "explain": "qbcallbacks.cli.explain",
    "lsp": "qbcallbacks.cli.lsp",
    "grammar": "qbcallbacks.cli.grammar",
    "adapt": "qbcallbacks.cli.adapt",
    "completion": "qbcallbacks.cli.completion",
}

#: Other names for commands (shown in the help of the command they stand for).
ALIASES: dict[str, str] = {"rule": "explain"}


def __getattr__(name: str) -> Any:
    """The click group and its parts, from `_group` when first asked for."""
    if name in ("cli", "_LazyGroup", "_PipeClosed"):
        from . import _group

        return getattr(_group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 findings or failed callbacks, 2 usage or
    environment error). A user's mistake is one line on standard error, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # asked on every editor start: no click, no package metadata
        from .._version import __version__

        print(f"qbcallbacks, version {__version__}")
        return 0
    import gc

    global _collector_paused
    _collector_paused = gc.isenabled()
    gc.disable()  # until the command's module is imported: see `resume_collector`
    try:
        return _main(args)
    finally:
        resume_collector()


def resume_collector() -> None:
    """Turn the cyclic garbage collector back on if `main` paused it.

    Importing click, pydantic and a command's modules creates tens of thousands of objects
    that live as long as the process; the collector would scan them several times over and
    free nothing (a few per cent of a `check`). It is paused for the imports and resumes
    before the command runs, since some commands run for hours.
    """
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        import gc

        gc.enable()


_collector_paused = False


def _main(args: list[str]) -> int:
    import click

    from ..errors import QbCallbacksError
    from ._group import _PipeClosed, cli

    try:
        # Without standalone mode, click hands back the code given to `ctx.exit`.
        code = cli.main(args=args, prog_name="qbcallbacks", standalone_mode=False)
        if not sys.stdout.closed:  # the language server closes it when the client says exit
            sys.stdout.flush()  # a closed pipe shows here, not at exit
    except click.exceptions.Exit as exc:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            return _broken_pipe()
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except MemoryError:  # the limits should prevent it; never a traceback if they do not
        click.echo("qbcallbacks: out of memory (see spec/limits.md to lower the limits)", err=True)
        return 1
    except (BrokenPipeError, _PipeClosed):
        return _broken_pipe()
    except (QbCallbacksError, OSError) as exc:
        click.echo(f"qbcallbacks: error: {_one_line(exc)}", err=True)
        return 2
    except Exception as exc:
        # A database error from a command that opened one; `check` never imports sqlite3,
        # so the class is looked up only where the module is already loaded.
        sqlite3 = sys.modules.get("sqlite3")
        if sqlite3 is None or not isinstance(exc, sqlite3.Error):
            raise
        click.echo(f"qbcallbacks: error: {_one_line(exc)}", err=True)
        return 2
    return code if isinstance(code, int) else 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}:{where}".rstrip(":")
    return " ".join(str(exc).split()) or type(exc).__name__


def _broken_pipe() -> int:
    """The reader went away (`| head`): say nothing, and keep Python from complaining about
    the unflushed standard output at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # as a shell reports a filter ended by SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
