"""`qbcallbacks grammar [trigger|callbacks|qcb|common] [--path] [--vocabulary] [--vectors]`.

For authors of other tools (editor plugins, linters): the packaged Lark grammars, the keyword
table that completion and hover use, and the conformance vectors, all from the installed
package, so a tool always sees the grammar of the qbcallbacks it runs against.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click

from ..lang import grammar_text
from ..lang.vocabulary import vocabulary_json

_NAMES = {"trigger": "trigger.lark", "callbacks": "callbacks.lark", "qcb": "qcb.lark",
          "common": "common.lark"}


def vectors_dir() -> Path | None:
    """The conformance vectors: packaged in a wheel, or spec/vectors of a source tree."""
    packaged = resources.files("qbcallbacks").joinpath("spec_vectors")
    if packaged.is_dir():
        return Path(str(packaged))
    tree = Path(__file__).resolve().parents[3] / "spec" / "vectors"
    return tree if tree.is_dir() else None


@click.command("grammar")
@click.argument("name", type=click.Choice(list(_NAMES)), default="callbacks")
@click.option("--path", "show_path", is_flag=True, help="Print the grammar file's path.")
@click.option("--vocabulary", is_flag=True,
              help="Print the keyword table (names, types, contexts, operators, qcb "
                   "commands with their meanings) as JSON.")
@click.option("--vectors", is_flag=True, help="Print the directory of the conformance vectors.")
@click.pass_context
def command(ctx: click.Context, name: str, show_path: bool, vocabulary: bool,
            vectors: bool) -> None:
    """Print a packaged grammar (callbacks by default), its path, or the keyword table."""
    if vocabulary:
        click.echo(json.dumps(vocabulary_json(), indent=2, ensure_ascii=False))
        return
    if vectors:
        found = vectors_dir()
        if found is None:
            click.echo("the conformance vectors are not installed", err=True)
            ctx.exit(1)
        click.echo(str(found))
        return
    if show_path:
        click.echo(str(resources.files("qbcallbacks.lang").joinpath(_NAMES[name])))
        return
    click.echo(grammar_text(_NAMES[name]), nl=False)
