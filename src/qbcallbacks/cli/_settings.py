"""`check`'s settings files: `[tool.qbcallbacks]` in `pyproject.toml`, or `qbcallbacks.toml`.

The file that governs a finding is the nearest one above the finding's file, as ruff finds its
own: in each directory from there up to the root, a `pyproject.toml` that has a
`[tool.qbcallbacks]` table wins, then a `qbcallbacks.toml`; a `pyproject.toml` without the table
is passed over. `--config FILE` names one file for every finding and `--isolated` reads none.
Keys: `select` and `ignore` (codes or prefixes, as the options take them) and
`per-file-ignores` (a table of glob patterns, relative to the settings file's directory, to
codes). A settings file that cannot be read or holds anything else is a setup error (exit 2).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._records import record
from ..errors import CODES
from ._targets import SetupError

PYPROJECT = "pyproject.toml"
OWN_FILE = "qbcallbacks.toml"
KEYS = ("select", "ignore", "per-file-ignores")


@record
class Settings:
    """What one settings file says; `root` is the directory its patterns are relative to.
    :func:`read_settings` checks every value it takes from the file."""

    source: str | None = None
    root: str = "."
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def ignored_for(self, file: str) -> tuple[str, ...]:
        """The codes the per-file ignores drop for `file`."""
        if not self.per_file_ignores:
            return ()
        path = os.path.abspath(file)
        relative = os.path.relpath(path, self.root).replace(os.sep, "/")
        name = os.path.basename(path)
        out: list[str] = []
        for pattern, codes in self.per_file_ignores:
            if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(
                    relative, pattern.rstrip("/") + "/*") or (
                    "/" not in pattern and fnmatch.fnmatchcase(name, pattern)):
                out.extend(codes)
        return tuple(out)


DEFAULT = Settings()


def _codes(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SetupError(f"{where}: expected a list of codes")
    out = tuple(v.strip().upper() for v in value)
    for code in out:
        if not code or not any(known.startswith(code) for known in CODES):
            raise SetupError(f"{where}: {code!r} is not a code or a prefix of one")
    return out


def _table(path: Path) -> Mapping[str, object] | None:
    """The qbcallbacks table of a settings file; None for a pyproject.toml without one."""
    import tomllib

    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise SetupError(f"{path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SetupError(f"{path}: not valid TOML ({exc})") from None
    if path.name != PYPROJECT:
        return data
    tool = data.get("tool")
    table = tool.get("qbcallbacks") if isinstance(tool, dict) else None
    if table is not None and not isinstance(table, dict):
        raise SetupError(f"{path}: [tool.qbcallbacks] must be a table")
    return table


def read_settings(path: Path) -> Settings:
    """The settings of one file (for a pyproject.toml, of its `[tool.qbcallbacks]` table)."""
    table = _table(path)
    if table is None:
        table = {}
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise SetupError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(KEYS)})")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise SetupError(f"{path}: per-file-ignores must be a table of pattern = [codes]")
    return Settings(
        source=str(path), root=str(path.resolve().parent),
        select=_codes(table.get("select", []), f"{path}: select"),
        ignore=_codes(table.get("ignore", []), f"{path}: ignore"),
        per_file_ignores=tuple((pattern, _codes(codes, f"{path}: per-file-ignores {pattern!r}"))
                               for pattern, codes in per_file.items()))


def settings_file(directory: Path) -> Path | None:
    """The settings file that governs `directory`: the nearest one at or above it."""
    for here in (directory, *directory.parents):
        pyproject = here / PYPROJECT
        if pyproject.is_file() and _table(pyproject) is not None:
            return pyproject
        own = here / OWN_FILE
        if own.is_file():
            return own
    return None


class Resolver:
    """Finds (once per directory) the settings that govern each finding's file."""

    def __init__(self, *, config: str | None = None, isolated: bool = False) -> None:
        if config is not None and isolated:
            raise SetupError("--config and --isolated contradict each other")
        self._isolated = isolated
        self._fixed = read_settings(Path(config)) if config is not None else None
        self._by_dir: dict[str, Settings] = {}
        self._by_file: dict[Path, Settings] = {}

    def for_file(self, file: str) -> Settings:
        if self._fixed is not None:
            return self._fixed
        if self._isolated:
            return DEFAULT
        directory = os.path.dirname(os.path.abspath(file)) if file != "-" else os.getcwd()
        if directory not in self._by_dir:
            found = settings_file(Path(directory))
            if found is None:
                self._by_dir[directory] = DEFAULT
            else:
                if found not in self._by_file:
                    self._by_file[found] = read_settings(found)
                self._by_dir[directory] = self._by_file[found]
        return self._by_dir[directory]


def _split(values: Sequence[str]) -> list[str]:
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


def wanted(code: str, settings: Settings, select: Sequence[str], ignore: Sequence[str],
           file: str) -> bool:
    """Whether a finding is kept: `--select` replaces the file's `select`, `--ignore` adds to
    its `ignore`, and its per-file ignores always apply."""
    chosen = _split(select) or list(settings.select)
    dropped = [*settings.ignore, *_split(ignore), *settings.ignored_for(file)]
    return ((not chosen or any(code.startswith(c) for c in chosen))
            and not any(code.startswith(c) for c in dropped))
