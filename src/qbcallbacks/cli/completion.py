"""`qbcallbacks completion bash|zsh|fish`: the shell's completion script, from click's own.

Load it once per shell: `eval "$(qbcallbacks completion bash)"` in `~/.bashrc`, the same with
`zsh` in `~/.zshrc`, or for fish
`qbcallbacks completion fish > ~/.config/fish/completions/qbcallbacks.fish`.
The script calls `qbcallbacks` back with `_QBCALLBACKS_COMPLETE` set, so commands, options and
choices complete from the installed version.
"""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")
PROG = "qbcallbacks"
COMPLETE_VAR = "_QBCALLBACKS_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    bash: eval "$(qbcallbacks completion bash)" in ~/.bashrc; zsh: the same in ~/.zshrc;
    fish: qbcallbacks completion fish > ~/.config/fish/completions/qbcallbacks.fish
    """
    from click.shell_completion import get_completion_class

    from . import cli

    completion = get_completion_class(shell)
    assert completion is not None  # every name of SHELLS is one click knows
    click.echo(completion(cli, {}, PROG, COMPLETE_VAR).source())
