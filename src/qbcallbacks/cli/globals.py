"""`qbcallbacks global add|list|remove`: global callbacks on a running service or a trail.

With `--service unix:SOCKET|tcp:HOST:PORT` the command asks a running `qbcallbacks serve`
as its administrator (`hello` as `admin`, with the token of `--token-file` when given, then
the `global` method), which takes the callback at once. With `--audit DB` it writes the trail
itself, for a dispatcher that is not running (a running one holds the trail): the next start
takes the callback. Either way the site must allow global callbacks (qb.conf
`supervisor_global_callbacks = true`: the service's own, or with `--audit` the one of
`--qbconf`, `$QB_CONF` or `/etc/qb.conf`); a refusal says why, is kept in the trail, and
exits 1. Exit status: 0 done, 1 refused (or no such callback), 2 usage or environment errors.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..model.languages import language_of
from ._targets import SetupError

_TARGET = [
    click.option("--service", "service", default=None, metavar="ADDRESS",
                 help="A running service: unix:SOCKET or tcp:HOST:PORT."),
    click.option("--audit", "audit_path", default=None, metavar="DB",
                 help="An audit trail no dispatcher is running on (a path or a URL)."),
    click.option("--token-file", type=click.Path(dir_okay=False, exists=True), default=None,
                 help="The token of a --service that asks for one (its --token-file)."),
]


def _target(func: Any) -> Any:
    for option in reversed(_TARGET):
        func = option(func)
    return func


class Refused(click.ClickException):
    """The site or the callback said no: one line on standard error, exit status 1."""

    exit_code = 1


def _one_target(service: str | None, audit_path: str | None) -> None:
    if (service is None) == (audit_path is None):
        raise click.UsageError("give either --service ADDRESS or --audit DB")


def _ask(service: str, params: dict[str, Any], token_file: str | None) -> dict[str, Any]:
    """One `global` request to a running service, as its administrator (`hello` with the
    `admin` role first); its result, or Refused with the service's error."""
    from ..service.listen import ListenError, parse_listen

    try:
        kind, where, port = parse_listen(service)
    except ListenError as exc:
        raise click.BadParameter(str(exc).replace("--listen", "--service")) from None
    hello: dict[str, Any] = {"role": "admin"}
    if token_file is not None:
        hello["token"] = _token(token_file)
    family = socket.AF_UNIX if kind == "unix" else socket.AF_INET6 if ":" in where \
        else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(60)
            sock.connect(where if kind == "unix" else (where, port))
            with sock.makefile("rb") as lines:
                for key, method, args in ((1, "hello", hello), (2, "global", params)):
                    request = {"jsonrpc": "2.0", "id": key, "method": method, "params": args}
                    sock.sendall((json.dumps(request) + "\n").encode())
                    reply = _reply_to(key, lines, service)
                    if "error" in reply:
                        raise Refused(str(reply["error"].get("message", reply["error"])))
    except OSError as exc:
        raise SetupError(f"--service {service}: {exc.strerror or exc}") from None
    result: dict[str, Any] = reply.get("result") or {}
    return result


def _reply_to(key: int, lines: Any, service: str) -> dict[str, Any]:
    for raw in lines:
        reply: dict[str, Any] = json.loads(raw)
        if reply.get("id") == key:
            return reply
    raise SetupError(f"--service {service}: the service closed the connection")


def _token(token_file: str) -> str:
    from ..service.access import TokenError, read_token

    try:
        return read_token(token_file)
    except TokenError as exc:
        raise click.UsageError(str(exc)) from None


@contextmanager
def _trail(audit_path: str) -> Iterator[Any]:
    """The global callbacks' table of a trail opened as its one writer."""
    from ..audit.backends import open_audit
    from ..audit.store import AuditError

    try:
        store = open_audit(audit_path)
    except AuditError as exc:
        raise SetupError(str(exc)) from None
    try:
        yield store.global_callbacks()
    finally:
        store.close()


@click.group("global")
def command() -> None:
    """Global callbacks: no job, once per matching event even while no job is live."""


@command.command("add")
@click.argument("trigger")
@click.option("--code", default=None, help="The callback's code (qcb commands, Python, Perl).")
@click.option("--script", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Read the code from this file (its extension gives the language).")
@click.option("--language", type=click.Choice(["qube", "python", "perl", "mail"]),
              default=None, help="The code's language [default: from --script].")
@click.option("--qbconf", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --audit: the qb.conf whose setting allows global callbacks.")
@_target
def add(trigger: str, code: str | None, script: str | None, language: str | None,
        qbconf: str | None, service: str | None, audit_path: str | None,
        token_file: str | None) -> None:
    """Add a global callback firing on TRIGGER; prints its id."""
    _one_target(service, audit_path)
    code, language = _code_and_language(code, script, language)
    if service is not None:
        found = _ask(service, {"op": "add", "trigger": trigger, "language": language,
                               "code": code}, token_file)
        click.echo(str(found.get("id")))
        return
    from ..dispatch.globals import refusal_of

    assert audit_path is not None
    allowed = _site_allows(qbconf)
    with _trail(audit_path) as table:
        canonical, problem = refusal_of(trigger, language, code, allowed=allowed)
        if problem is not None:
            table.refuse(canonical, language, code, problem)
            raise Refused(f"global callback refused: {problem}")
        click.echo(str(table.add(canonical, language, code).id))


def _code_and_language(code: str | None, script: str | None,
                       language: str | None) -> tuple[str, str]:
    if (code is None) == (script is None):
        raise click.UsageError("give the code with --code TEXT or --script FILE")
    if script is not None:
        from ..errors import SourceError
        from ..lang.source import read_source_file

        try:
            code = read_source_file(script, kind="qcb" if script.endswith(".qcb") else "script")
        except SourceError as exc:
            raise SetupError(exc.diagnostics[0].message) from None
        language = language or {"qcb": "qube"}.get(language_of(script), language_of(script))
    if language is None:
        raise click.UsageError("give --language (qube, python, perl or mail)")
    assert code is not None
    return code, language


def _site_allows(qbconf: str | None) -> bool:
    from ._session import site_conf

    conf = site_conf(qbconf)
    return conf is not None and conf.allow_global_callbacks


@command.command("list")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@_target
def list_(fmt: str, service: str | None, audit_path: str | None,
          token_file: str | None) -> None:
    """List the global callbacks in force."""
    _one_target(service, audit_path)
    if service is not None:
        found = list(_ask(service, {"op": "list"}, token_file).get("globals") or [])
    else:
        assert audit_path is not None
        with _trail(audit_path) as table:
            found = [g.model_dump(exclude={"name"}) for g in table.active()]
    if fmt == "json":
        click.echo(json.dumps(found))
        return
    for g in found:
        code = " ".join(str(g["code"]).split())
        click.echo(f"{g['id']:>5}  {g['trigger']:<28} {g['language']:<7} "
                   f"{code[:40] + ('...' if len(code) > 40 else '')}")
    click.echo(f"{len(found)} global callback(s)", err=True)


@command.command("remove")
@click.argument("callback_id", type=click.IntRange(min=1), metavar="ID")
@_target
def remove(callback_id: int, service: str | None, audit_path: str | None,
           token_file: str | None) -> None:
    """Take the global callback ID out of force."""
    _one_target(service, audit_path)
    if service is not None:
        _ask(service, {"op": "remove", "id": callback_id}, token_file)
    else:
        assert audit_path is not None
        with _trail(audit_path) as table:
            if not table.remove(callback_id):
                raise Refused(f"no global callback {callback_id} is in force")
    click.echo(f"removed global callback {callback_id}")
