"""Loading callback directories: callbacks.conf, the scripts it names, and their safety.

Loading never raises for anything an administrator wrote or left on disk: every problem is a
diagnostic, and a line with an error is simply not loaded while the other lines are.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import Diagnostic, SourceError, make_diagnostic
from ..lang.config import RuleSite, parse_config
from ..lang.near_miss import near_miss_diagnostics
from ..lang.source import decode_source
from ..model._base import Frozen, trusted
from ..model.languages import language_of
from ..model.rules import Rule
from ..runtimes.api import Runtime
from ..runtimes.validate import Validator, validators
from .permissions import directory_problems, file_problems

CONFIG_NAME = "callbacks.conf"
#: Where the original looks when no path is configured and QBDIR is not set.
DEFAULT_QBDIR = "/usr/local/pfx/qube"


class DirectoryLoad(Frozen):
    """The rules of one callback directory and everything found wrong with it."""

    directory: str
    rules: tuple[Rule, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


class CallbackSet(Frozen):
    """The rules of a whole callback path, in firing order (directory, then line)."""

    directories: tuple[DirectoryLoad, ...] = ()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for d in self.directories for r in d.rules)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return tuple(x for d in self.directories for x in d.diagnostics)

    @property
    def ok(self) -> bool:
        return all(d.severity != "error" for d in self.diagnostics)


def expand_callback_path(specs: Iterable[str] | None = None,
                         env: Mapping[str, str] | None = None) -> list[str]:
    """Directories named by `supervisor_universal_callback_path`-style specs, in order.

    Each spec is a directory or a comma-separated list; `$VARS` expand from `env`. With no spec,
    the default is `$QBDIR/callback`.
    """
    env = os.environ if env is None else env
    specs = list(specs or ())
    if not specs:
        return [str(Path(env.get("QBDIR") or DEFAULT_QBDIR) / "callback")]
    out: list[str] = []
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if part:
                out.append(_expand_vars(part, env))
    return out


_VAR = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def _expand_vars(text: str, env: Mapping[str, str]) -> str:
    """`$NAME` and `${NAME}` from `env`; unknown names stay as written (and so warn later)."""
    def sub(m: re.Match[str]) -> str:
        return env.get(m.group(1) or m.group(2), m.group(0))

    return os.path.expanduser(_VAR.sub(sub, text))


def load_callback_path(specs: Iterable[str] | None = None, *, check_scripts: bool = True,
                       env: Mapping[str, str] | None = None,
                       compile_perl: bool = False) -> CallbackSet:
    """Load every directory of a callback path; rules are numbered in firing order.

    Scripts are checked without running any of their code, unless `compile_perl` asks for
    `perl -c`, which runs Perl `BEGIN` and `use` blocks.
    """
    runtimes = _runtimes(compile_perl)
    loads: list[DirectoryLoad] = []
    position = 0
    for directory in expand_callback_path(specs, env):
        load = load_directory(directory, position=position, check_scripts=check_scripts,
                              runtimes=runtimes)
        position += len(load.rules)
        loads.append(load)
    return CallbackSet(directories=tuple(loads))


def _runtimes(compile_perl: bool = False) -> dict[str, Validator]:
    return validators(compile_perl=compile_perl)


def load_directory(directory: str, *, position: int = 0, check_scripts: bool = True,
                   runtimes: Mapping[str, Runtime | Validator] | None = None,
                   text: str | None = None) -> DirectoryLoad:
    """Load one callback directory; `position` is the firing position of its first rule.
    `text`, when given, stands in for the callbacks.conf on disk (standard input, an editor)."""
    runtimes = _runtimes() if runtimes is None else runtimes
    root = Path(directory)
    conf = root / CONFIG_NAME
    if not root.is_dir():
        return DirectoryLoad(directory=directory, diagnostics=(make_diagnostic(
            "QCB204", f"callback directory {directory!r} "
            f"{'is not a directory' if root.exists() else 'does not exist'}; it is skipped",
            file=directory, severity="warning"),))
    if text is None and not conf.is_file():
        return DirectoryLoad(directory=directory, diagnostics=(make_diagnostic(
            "QCB205", f"no {CONFIG_NAME} in {directory!r}; the directory adds no callbacks",
            file=str(conf), severity="warning"),))
    diags: list[Diagnostic] = []
    if text is None:
        text = _read_text(conf, diags)
        if text is None:
            return DirectoryLoad(directory=directory, diagnostics=tuple(diags))
        diags.extend(file_problems(conf, str(conf)))
    diags.extend(directory_problems(root))
    if any(d.severity == "error" for d in diags):  # unsafe to run anything from here
        return DirectoryLoad(directory=directory, diagnostics=tuple(diags))
    parsed = parse_config(text, str(conf), extensions=tuple(runtimes))
    diags.extend(parsed.diagnostics)
    diags.extend(near_miss_diagnostics(parsed))
    rules: list[Rule] = []
    checked: dict[str, list[Diagnostic]] = {}
    real_root = os.path.realpath(root)
    verdicts: dict[str, tuple[str, str] | None] = {}
    for site in parsed.rules:
        problems = _script_problems(root, real_root, site, str(conf), verdicts)
        if not problems and check_scripts:
            name = site.rule.file
            if name not in checked:
                checker = runtimes[Path(name).suffix.lower()]
                checked[name] = (checker.validate(root / name) if isinstance(checker, Runtime)
                                 else checker(root / name))
                checked[name] += file_problems(root / name, str(conf), site)
                diags.extend(checked[name])
            problems = [d for d in checked[name] if d.severity == "error"]
        elif problems:
            diags.extend(problems)
        if any(d.severity == "error" for d in problems):
            continue
        rules.append(trusted(
            Rule, directory=directory, file=site.rule.file, language=language_of(site.rule.file),
            trigger=site.rule.trigger, line=site.line, column=site.file_column,
            trigger_column=site.trigger_column, position=position + len(rules),
        ))
    return DirectoryLoad(directory=directory, rules=tuple(rules),
                         diagnostics=tuple(sorted(diags, key=_order)))


def _order(d: Diagnostic) -> tuple[str, int, int]:
    return (d.file, d.line, d.column)


def _read_text(path: Path, diags: list[Diagnostic]) -> str | None:
    try:
        return decode_source(path.read_bytes(), str(path))
    except OSError as exc:
        diags.append(make_diagnostic("QCB001", f"cannot read {path.name}: {exc.strerror}",
                                     file=str(path)))
    except SourceError as exc:
        diags.extend(exc.diagnostics)
    return None


def _script_problems(root: Path, real_root: str, site: RuleSite, conf: str,
                     seen: dict[str, tuple[str, str] | None]) -> list[Diagnostic]:
    """Problems of the script a rule names; `seen` keeps each name's verdict for this load,
    since a directory names a few scripts on many lines."""
    name = site.rule.file
    if name not in seen:
        seen[name] = _script_problem(root, real_root, name)
    found = seen[name]
    if found is None:
        return []
    return [make_diagnostic(found[0], found[1], file=conf, line=site.line,
                            column=site.file_column,
                            end_column=site.file_column + len(name),
                            source_line=site.source_line)]


def _script_problem(root: Path, real_root: str, name: str) -> tuple[str, str] | None:
    path = root / name
    try:
        info = path.lstat()
    except OSError:
        return ("QCB112", f"script {name!r} is not in {str(root)!r}")
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(path)
        if os.path.commonpath([real_root, target]) != real_root:
            return ("QCB113", f"script {name!r} is a link to {target!r}, outside "
                    "the callback directory")
        try:
            info = path.stat()
        except OSError:
            return ("QCB112", f"script {name!r} is a broken link")
    if not stat.S_ISREG(info.st_mode):
        return ("QCB114", f"script {name!r} is not a regular file")
    return None
