"""The `qbcallbacks` command line: one module per subcommand, loaded when used.

Each subcommand lives in `qbcallbacks.cli.<name>` and exposes a click command named `command`.
Loading lazily keeps `qbcallbacks check` fast: it never imports the runtimes' worker code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

import click

#: Subcommand name -> module; a module that is not installed is simply not offered.
COMMANDS: dict[str, str] = {
    "check": "qbcallbacks.cli.check",
    "format": "qbcallbacks.cli.fmt",
    "replay": "qbcallbacks.cli.replay",
    "simulate": "qbcallbacks.cli.simulate",
    "history": "qbcallbacks.cli.history",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [n for n, mod in COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None or importlib.util.find_spec(module) is None:
            return None
        command = importlib.import_module(module).command
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qbcallbacks")
def cli() -> None:
    """Universal callbacks for a render-farm supervisor: check, format, replay, simulate."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 ok, 1 findings, 2 usage error)."""
    try:
        # Without standalone mode, click hands back the code given to `ctx.exit`.
        code = cli.main(args=list(sys.argv[1:] if argv is None else argv),
                        prog_name="qbcallbacks", standalone_mode=False)
    except click.exceptions.Exit as exc:
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
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
