"""The click group of the command line, imported only once a command needs click."""

from __future__ import annotations

import importlib

import click

from .._version import __version__
from . import ALIASES, COMMANDS, resume_collector


class _PipeClosed(Exception):
    """Standard output's reader went away; kept apart from OSError so click does not turn it
    into a plain exit 1."""


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(ALIASES.get(cmd_name, cmd_name))
        if module is None:
            return None
        command = importlib.import_module(module).command
        resume_collector()
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qbcallbacks")
def cli() -> None:
    """Universal callbacks for a render-farm supervisor.

    Sites' files: check, format, explain (alias rule). Running callbacks: replay, simulate,
    history, serve, global (job-less global callbacks). Tools: lsp (the language server),
    grammar (the packaged grammars), adapt (other farm managers), completion (shell
    completion scripts).

    Exit status: 0 clean, 1 findings or failed callbacks, 2 usage or environment errors.
    """
