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
from typing import TYPE_CHECKING

from .._records import maker, record
from ..errors import Diagnostic, SourceError, make_diagnostic
from ..lang._fast_rows import CompoundRow, EventRow, TriggerRow, row_model
from ..lang.config import RuleRow, RuleSite, make_rule_site, scan_config
from ..lang.near_miss import near_miss_rows
from ..lang.source import (
    SourceKind,
    cap_diagnostics,
    collector_paused,
    kind_of,
    read_source_file,
    size_limit,
    summary_diagnostic,
)
from ..model.documents import make_rule_line
from ..model.languages import language_of
from ..model.limits import Limits, default_limits
from ..model.rules import Rule, make_rule
from ..runtimes.validate import Validator, Validators, validators
from .permissions import directory_problems, file_problems

if TYPE_CHECKING:  # a site runtime's own check; the runtime interface loads only if used
    from ..lang.trigger import TriggerModel
    from ..runtimes.api import Runtime

CONFIG_NAME = "callbacks.conf"
#: Where the original looks when no path is configured and QBDIR is not set.
DEFAULT_QBDIR = "/usr/local/pfx/qube"


@record
class DirectoryLoad:
    """The rules of one callback directory and everything found wrong with it."""

    directory: str
    rules: tuple[Rule, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@record
class CallbackSet:
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


_directory_load = maker(DirectoryLoad)


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

    expanded = _VAR.sub(sub, text)
    try:
        return os.path.expanduser(expanded)
    except ValueError:  # a NUL byte names no user; the directory check reports the path
        return expanded


def load_callback_path(specs: Iterable[str] | None = None, *, check_scripts: bool = True,
                       env: Mapping[str, str] | None = None,
                       limits: Limits | None = None, compile_perl: bool = False) -> CallbackSet:
    """Load every directory of a callback path; rules are numbered in firing order.

    Scripts are checked without running any of their code, unless `compile_perl` asks for
    `perl -c`, which runs Perl `BEGIN` and `use` blocks.
    """
    runtimes = _runtimes(compile_perl)
    loads: list[DirectoryLoad] = []
    position = 0
    for directory in expand_callback_path(specs, env):
        load = load_directory(directory, position=position, check_scripts=check_scripts,
                              runtimes=runtimes, limits=limits)
        position += len(load.rules)
        loads.append(load)
    return CallbackSet(directories=tuple(loads))


def _runtimes(compile_perl: bool = False) -> Validators:
    return validators(compile_perl=compile_perl)


def load_directory(directory: str, *, position: int = 0, check_scripts: bool = True,
                   runtimes: Mapping[str, Runtime | Validator] | None = None,
                   limits: Limits | None = None, text: str | None = None) -> DirectoryLoad:
    """Load one callback directory; `position` is the firing position of its first rule.
    `text`, when given, stands in for the callbacks.conf on disk (standard input, an editor)."""
    runtimes = _runtimes() if runtimes is None else runtimes
    limits = default_limits() if limits is None else limits
    root = Path(directory)
    conf = root / CONFIG_NAME
    unusable = _directory_problem(directory, conf, given_text=text is not None)
    if unusable is not None:
        return _loaded(directory, (), (unusable,))
    diags: list[Diagnostic] = []
    if text is None:
        text = _read_text(conf, diags, limits)
        if text is None:
            return _loaded(directory, (), tuple(diags))
        diags.extend(file_problems(conf, str(conf)))
    diags.extend(directory_problems(root))
    if any(d.severity == "error" for d in diags):  # unsafe to run anything from here
        return _loaded(directory, (), tuple(diags))
    # Tens of thousands of rows and rules, none in a reference cycle: the collector scans
    # them once, afterwards, not once after the parse and again after the rules.
    with collector_paused():
        try:
            rows, found = scan_config(text, str(conf), extensions=runtimes,
                                      limits=limits)
        except MemoryError:
            del text
            return _loaded(directory, (), (make_diagnostic(
                "QCB014", f"out of memory while parsing {CONFIG_NAME}; lower its size limit",
                file=str(conf)),))
        del text
        diags.extend(found)
        diags.extend(near_miss_rows(str(conf), rows))
        rules = _load_rules(directory, root, rows, str(conf), diags, position,
                            check_scripts, runtimes, limits)
    return _loaded(directory, tuple(rules), cap_diagnostics(sorted(diags, key=_order),
                                                            limits.max_diagnostics))


def _loaded(directory: str, rules: tuple[Rule, ...],
            diagnostics: tuple[Diagnostic, ...]) -> DirectoryLoad:
    """The outcome, built unchecked: its parts are already records of the right types."""
    return _directory_load(directory, rules, diagnostics)


def _load_rules(directory: str, root: Path, rows: list[RuleRow], conf: str,
                diags: list[Diagnostic], position: int, check_scripts: bool,
                runtimes: Mapping[str, Runtime | Validator], limits: Limits) -> list[Rule]:
    """The rules whose scripts are usable; each script is looked at once, and past the
    diagnostics limit a bad line is only counted. `rows` is emptied on the way."""
    rules: list[Rule] = []
    real_root = os.path.realpath(root)
    # Per script name, looked at once: None when its rules load, else the (code, message) of
    # every line naming it, or () when its own check already reported it.
    verdicts: dict[str, tuple[str, str] | tuple[()] | None] = {}
    languages: dict[str, str] = {}
    # A trigger's row becomes its model here, once per distinct trigger in the file.
    models: dict[TriggerRow, TriggerModel] = {}

    def model(row: RuleRow) -> TriggerModel:
        trigger = row.trigger
        if type(trigger) is not EventRow and type(trigger) is not CompoundRow:
            return trigger  # type: ignore[return-value]
        found = models.get(trigger)
        if found is None:
            found = models[trigger] = row_model(trigger)
        return found

    room = limits.max_diagnostics - sum(d.file == conf for d in diags)
    dropped = 0
    add = rules.append
    rows.reverse()  # taken from the end, so that each row is freed once its rule is built
    while rows:
        row = rows.pop()
        name = row.file
        try:
            verdict = verdicts[name]
        except KeyError:
            verdict = verdicts[name] = _script_verdict(root, real_root, name, limits)
            if verdict is None and check_scripts:
                found = _validate(runtimes[Path(name).suffix.lower()], root / name)
                found += file_problems(root / name, conf, _site(row))
                diags.extend(found)
                if any(d.severity == "error" for d in found):
                    verdict = verdicts[name] = ()
            languages[name] = language_of(name)
        if verdict is not None:
            if not verdict:
                continue
            if room > 0:
                diags.append(_on_line(verdict, row, conf))
                room -= 1
            else:
                dropped += 1
            continue
        add(make_rule(directory, name, languages[name], model(row), row.line, row.file_column,
                      row.trigger_column, position + len(rules)))
    if dropped:
        diags.append(summary_diagnostic(conf, dropped, dropped, limits.max_diagnostics))
    return rules


def _site(row: RuleRow) -> RuleSite:
    """The model of one row, for the checks that take one."""
    line = make_rule_line("rule", row.file, row_model(row.trigger), row.comment)
    return make_rule_site(row.line, row.file_column, row.trigger_column, row.source_line, line)


def _validate(checker: Runtime | Validator, path: Path) -> list[Diagnostic]:
    """The script check for its language; a compiler that runs out of stack or memory on a
    pathological script (a few hundred thousand nested operators) is a diagnostic too."""
    try:
        validate = getattr(checker, "validate", None)  # a Runtime, else a plain check
        return list(validate(path) if callable(validate) else checker(path))  # type: ignore[operator]
    except (MemoryError, RecursionError):
        return [make_diagnostic("QCB014", f"{path.name} is too deeply nested or too large to "
                                "check; it is not run", file=str(path))]


def _on_line(verdict: tuple[str, str], row: RuleRow, conf: str) -> Diagnostic:
    code, message = verdict
    return make_diagnostic(code, message, file=conf, line=row.line, column=row.file_column,
                           end_column=row.file_column + len(row.file),
                           source_line=row.source_line)


def _order(d: Diagnostic) -> tuple[str, int, int, bool]:
    return (d.file, d.line, d.column, d.code == "QCB010")


def _directory_problem(directory: str, conf: Path, *, given_text: bool = False,
                       ) -> Diagnostic | None:
    """Why the directory adds nothing (missing, not a directory, no callbacks.conf, cannot be
    entered), from `stat` alone; None when callbacks.conf is there to be read (or its text
    was given)."""
    try:
        info = os.stat(directory)
        if not stat.S_ISDIR(info.st_mode):
            return make_diagnostic("QCB204", f"callback directory {directory!r} is not a "
                                   "directory; it is skipped", file=directory, severity="warning")
        if not given_text:
            os.lstat(conf)
    except FileNotFoundError:
        if not os.path.lexists(directory):
            return make_diagnostic("QCB204", f"callback directory {directory!r} does not exist;"
                                   " it is skipped", file=directory, severity="warning")
        return make_diagnostic("QCB205", f"no {CONFIG_NAME} in {directory!r}; the directory "
                               "adds no callbacks", file=str(conf), severity="warning")
    except PermissionError:
        return make_diagnostic("QCB013", f"cannot enter callback directory {directory!r} or a "
                               "directory above it: permission denied", file=directory)
    except OSError as exc:
        return make_diagnostic("QCB015", f"cannot read callback directory {directory!r}: "
                               f"{exc.strerror or exc}", file=directory)
    except ValueError:  # a NUL byte (from a qb.conf, say): no file system path holds one
        return make_diagnostic("QCB204", f"callback directory {directory!r} is not a possible "
                               "path (it holds a NUL byte); it is skipped", file=directory,
                               severity="warning")
    return None


def _read_text(path: Path, diags: list[Diagnostic], limits: Limits) -> str | None:
    try:
        return read_source_file(path, kind="config", limits=limits, root=path.parent)
    except SourceError as exc:
        diags.extend(exc.diagnostics)
    return None


def _script_verdict(root: Path, real_root: str, name: str,
                    limits: Limits) -> tuple[str, str] | None:
    """(code, message) when the script cannot be used, from `lstat`/`stat` alone."""
    path = root / name
    try:
        info = path.lstat()
    except OSError:
        return ("QCB112", f"script {name!r} is not in {str(root)!r}")
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(path)
        if os.path.commonpath([real_root, target]) != real_root:
            return ("QCB113", f"script {name!r} is a link to {target!r}, outside the callback "
                    "directory")
        try:
            info = path.stat()
        except OSError:
            return ("QCB112", f"script {name!r} is a broken link")
    if not stat.S_ISREG(info.st_mode):
        return ("QCB114", f"script {name!r} is not a regular file")
    kind: SourceKind = "qcb" if kind_of(name) == "qcb" else "script"
    limit = size_limit(kind, limits)
    if info.st_size > limit:
        code = "QCB008" if kind == "qcb" else "QCB009"
        return (code, f"script {name!r} is {info.st_size} bytes, over the limit of {limit} "
                f"for a {kind} file; it is not checked or run")
    return None
