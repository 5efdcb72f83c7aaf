"""What a command's PATH arguments name: callback directories, callbacks.conf files, scripts,
standard input, or (with none) the directories of a qb.conf.

Everything here is read-only and imports no runtime worker code, so `check` stays fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import click

from ..config.load import CONFIG_NAME, expand_callback_path, load_directory
from ..errors import Diagnostic, SourceError, make_diagnostic
from ..lang.source import decode_source, read_source_bytes, split_lines
from ..runtimes.validate import Validators, validators

#: Where the original reads its settings on Linux when `$QB_CONF` is not set.
SYSTEM_QBCONF = "/etc/qb.conf"


class SetupError(click.ClickException):
    """Something around the command is wrong (a file, a directory, a database): one line on
    standard error and exit status 2, like a usage error but without the usage text."""

    exit_code = 2


def default_qbconf(env: Mapping[str, str] | None = None) -> str | None:
    """`$QB_CONF` when set, else `/etc/qb.conf` when it exists, else None."""
    env = os.environ if env is None else env
    named = env.get("QB_CONF")
    if named:
        return named
    return SYSTEM_QBCONF if os.path.isfile(SYSTEM_QBCONF) else None


def default_dirs(qbconf: str | None) -> list[str]:
    """The callback path of `qbconf` (or of the default qb.conf), else `$QBDIR/callback`."""
    from ..config.qbconf import QbConfError, read_qbconf

    conf = qbconf or default_qbconf()
    if conf is None:
        return expand_callback_path(None)
    try:
        return read_qbconf(conf).callback_path()
    except QbConfError:
        reason = "cannot be read"
        if not os.path.exists(conf):
            reason = "does not exist"
        raise SetupError(f"{'--qbconf' if qbconf else '$QB_CONF'}: {conf} {reason}") from None


def refuse_both(paths: Sequence[str], qbconf: str | None) -> None:
    """A PATH and `--qbconf` together would leave one of them silently unused."""
    if paths and qbconf:
        raise click.UsageError("give callback directories as PATH or through --qbconf, not both")




@dataclass
class Collected:
    """Findings of every target, and what was loaded (for the summary line)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    rules: int = 0
    directories: int = 0
    #: file as reported -> its text, for files not read from disk (standard input).
    texts: dict[str, str] = field(default_factory=dict)


def _same(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


class Checker:
    """Collects the diagnostics of each target once, whatever mix of targets names it."""

    def __init__(self, *, compile_perl: bool = False) -> None:
        self.out = Collected()
        self._runtimes: Validators = validators(compile_perl=compile_perl)
        self._loaded: dict[str, tuple[Diagnostic, ...]] = {}
        self._rule_files: dict[str, set[str]] = {}
        self._rule_counts: dict[str, int] = {}
        self._reported: set[str] = set()

    def _load(self, directory: str, *, report: bool = True) -> tuple[Diagnostic, ...]:
        """Load a directory once; its findings are reported once, when `report` asks."""
        key = os.path.realpath(directory)
        if key not in self._loaded:
            load = load_directory(directory, position=self.out.rules, runtimes=self._runtimes)
            self._loaded[key] = load.diagnostics
            self._rule_files[key] = {r.file for r in load.rules}
            self._rule_counts[key] = len(load.rules)
        if report and key not in self._reported:
            self._reported.add(key)
            self.out.rules += self._rule_counts[key]
            self.out.directories += 1
            self.out.diagnostics.extend(self._loaded[key])
        return self._loaded[key]

    def directory(self, directory: str) -> None:
        self._load(directory)

    def path(self, spec: str) -> None:
        """One PATH argument: a directory, a callbacks.conf, a script, or a comma list."""
        parts = [spec] if os.path.lexists(spec) or "," not in spec else \
            [p.strip() for p in spec.split(",") if p.strip()]
        for part in parts:
            path = os.path.expanduser(os.path.expandvars(part))
            if not os.path.exists(path):
                self.out.diagnostics.append(make_diagnostic(
                    "QCB020", f"{path!r} does not exist", file=path))
            elif os.path.isdir(path):
                self._load(path)
            elif os.path.basename(path) == CONFIG_NAME:
                self._load(os.path.dirname(path) or ".")
            elif Path(path).suffix.lower() in self._runtimes:
                self.script(path)
            else:
                self.out.diagnostics.append(make_diagnostic(
                    "QCB021", f"{path!r} is not a callback directory, {CONFIG_NAME} or a "
                    f"script ({', '.join(sorted(self._runtimes))})", file=path))

    def script(self, path: str) -> None:
        """A script's findings, found as its directory's load finds them; a script that load
        does not validate (not named, or named on a bad line) is validated on its own."""
        directory = os.path.dirname(path) or "."
        name = os.path.basename(path)
        if os.path.isfile(os.path.join(directory, CONFIG_NAME)):
            found = [d for d in self._load(directory, report=False) if _same(d.file, path)]
            self.out.diagnostics.extend(found)
            if found or name in self._rule_files[os.path.realpath(directory)]:
                return
        runtime = self._runtimes[Path(path).suffix.lower()]
        self.out.diagnostics.extend(d.moved(file=path) for d in runtime(Path(path)))

    def stdin(self, data: bytes, filename: str | None) -> None:
        """Text from standard input, checked as if it were `filename` (default callbacks.conf
        in the current directory)."""
        shown = filename or "-"
        try:
            text = decode_source(data, shown)
        except SourceError as exc:
            self.out.diagnostics.extend(exc.diagnostics)
            return
        self.out.texts[shown] = text
        suffix = Path(filename or CONFIG_NAME).suffix.lower()
        directory = os.path.dirname(filename or "") or "."
        if suffix in self._runtimes:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="qbcallbacks-stdin-") as tmp:
                copy = Path(tmp) / f"stdin{suffix}"
                copy.write_bytes(data)
                found = self._runtimes[suffix](copy)
            self.out.diagnostics.extend(d.moved(file=shown) for d in found)
            return
        load = load_directory(directory, position=self.out.rules, runtimes=self._runtimes,
                              text=text)
        conf = str(Path(directory) / CONFIG_NAME)
        self.out.rules += len(load.rules)
        self.out.directories += 1
        self.out.diagnostics.extend(d.moved(file=shown) if d.file == conf else d
                                    for d in load.diagnostics)


@cache
def _noqa() -> re.Pattern[str]:
    """The `# noqa[: CODES]` marker, compiled only when there is a finding to match it to."""
    return re.compile(r"#.*?\bnoqa\b(?::\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?",
                      re.IGNORECASE)


def noqa_filter(diagnostics: Sequence[Diagnostic], texts: Mapping[str, str],
                ) -> list[Diagnostic]:
    """Drop findings on a callbacks.conf line that ends with `# noqa` or `# noqa: CODE,...`."""
    cache: dict[str, list[str]] = {}

    def line_of(d: Diagnostic) -> str:
        if d.file not in cache:
            if d.file in texts:
                cache[d.file] = split_lines(texts[d.file])
            else:
                try:  # only a regular file within the limit: a FIFO would block the read
                    raw = read_source_bytes(d.file, kind="config").decode("utf-8", "replace")
                except SourceError:
                    raw = ""
                cache[d.file] = split_lines(raw)
        lines = cache[d.file]
        return lines[d.line - 1] if 0 < d.line <= len(lines) else ""

    kept = []
    for d in diagnostics:
        is_conf = os.path.basename(d.file) == CONFIG_NAME or d.file in texts
        match = _noqa().search(line_of(d)) if is_conf else None
        if match is not None:
            codes = match.group("codes")
            if codes is None or d.code.upper() in re.split(r"[\s,]+", codes.upper()):
                continue
        kept.append(d)
    return kept


def code_filter(diagnostics: Sequence[Diagnostic], select: Sequence[str],
                ignore: Sequence[str]) -> list[Diagnostic]:
    """`--select`/`--ignore`: codes or code prefixes (`QCB1` is every QCB1xx)."""
    def split(values: Sequence[str]) -> list[str]:
        return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]

    chosen, dropped = split(select), split(ignore)
    return [d for d in diagnostics
            if (not chosen or any(d.code.startswith(c) for c in chosen))
            and not any(d.code.startswith(c) for c in dropped)]
