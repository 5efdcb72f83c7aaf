"""Checking callback scripts without running them: what `check` and the loader use.

This module is light on purpose: it imports no worker, pool or dispatcher code, so `check`
stays fast and cannot start anything. Python scripts are compiled (compiling runs no code).
Perl scripts are parsed statically with PPI (`workers/perl_check.pl`), which never runs
their `BEGIN` blocks or `use` statements; `perl -c` finds more errors but runs those blocks,
so it is only used when asked for explicitly (`compile_perl=True`, `check --compile-perl`).
Without perl, or without PPI, a Perl script is not checked and nothing is said.

Starting Perl and loading PPI costs tens of milliseconds a script, paid by every `check` run
(a pre-commit hook, an editor save). The findings of the static check are kept as JSON in the
private per-user cache directory (the one the grammars use), keyed by a hash of the script's
bytes, its path, the interpreter and the checker, so an unchanged script is not parsed again.
What only Perl needs (finding and starting the interpreter, the cache's JSON) is imported when
a Perl script is checked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .._records import to_dict
from ..errors import Diagnostic, SourceError, make_diagnostic
from ..lang._lark import private_cache_dir
from ..lang.qcb import parse_qcb
from ..lang.source import SourceKind, read_source_bytes
from .registry import RuntimeNotFound, references, runtime_for

Validator = Callable[[Path], list[Diagnostic]]

PERL_CHECK = Path(__file__).resolve().parent / "workers" / "perl_check.pl"
_PERL_ERROR = re.compile(r"^(?P<msg>.*?) at (?P<file>.+?) line (?P<line>\d+)", re.M)
_SAFE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _script_bytes(path: Path, kind: SourceKind = "script") -> bytes | list[Diagnostic]:
    """The script's bytes, read only if it is a regular file within its limit (a FIFO would
    block the read); otherwise the diagnostics that say why it was not read."""
    try:
        return read_source_bytes(path, kind=kind)
    except SourceError as exc:
        return list(exc.diagnostics)


def python_syntax(path: Path) -> list[Diagnostic]:
    """Compile the script; a syntax error comes back with its line and column."""
    source = _script_bytes(path)
    if isinstance(source, list):
        return source
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno or 1
        text = (exc.text or "").rstrip("\r\n")
        col = exc.offset or 1
        end = exc.end_offset if exc.end_offset and exc.end_offset > col else col + 1
        return [make_diagnostic("QCB401", f"Python syntax error: {exc.msg}", file=str(path),
                                line=line, column=col, end_column=end, source_line=text)]
    except (OSError, ValueError) as exc:
        return [make_diagnostic("QCB001", f"cannot read the script: {exc}", file=str(path))]
    return []


def qcb_syntax(path: Path) -> list[Diagnostic]:
    source = _script_bytes(path, "qcb")
    if isinstance(source, list):
        return source
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [make_diagnostic("QCB001", f"cannot read the script: {exc}", file=str(path))]
    return list(parse_qcb(text, str(path)).diagnostics)


def _perl_diagnostic(path: Path, source: bytes, line: int, column: int,
                     msg: str) -> Diagnostic:
    lines = source.decode("utf-8", "replace").splitlines()
    src = lines[line - 1] if 0 < line <= len(lines) else None
    return make_diagnostic("QCB402", f"Perl syntax error: {msg}", file=str(path), line=line,
                           column=max(1, column), end_column=max(2, len(src or "") + 1),
                           source_line=src)


def _which(program: str) -> str | None:
    """The executable `program` as `shutil.which` finds it on POSIX: a name with a slash as
    given, else the first in the search path (`shutil`, with the compression modules it loads,
    would otherwise be imported by every `check`)."""
    if os.name != "posix":  # pragma: no cover - the executable suffixes of other systems
        import shutil

        return shutil.which(program)
    places = [program] if os.sep in program else \
        [os.path.join(directory, program) for directory in os.get_exec_path()]
    for place in places:
        if os.access(place, os.F_OK | os.X_OK) and not os.path.isdir(place):
            return place
    return None


def _perl_and_source(path: Path, perl: str | None) -> tuple[str, bytes] | list[Diagnostic]:
    """The Perl interpreter and the script's bytes, or what to report instead (nothing when
    no Perl is installed: then nothing can be said about the script)."""
    exe = _which(perl or "perl")
    if exe is None:
        return []
    source = _script_bytes(path)
    return source if isinstance(source, list) else (exe, source)


def _cache_file(kind: str, exe: str, path: Path, source: bytes) -> Path | None:
    import hashlib

    directory = private_cache_dir()
    if directory is None:
        return None
    digest = hashlib.sha256()
    for part in (kind.encode(), exe.encode(), str(path).encode("utf-8", "replace"),
                 PERL_CHECK.read_bytes(), source):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return directory / f"{kind}-{digest.hexdigest()[:32]}.json"


def _cached(file: Path | None) -> list[Diagnostic] | None:
    if file is None:
        return None
    try:
        text = file.read_text("utf-8")
        if text == "[]":  # a clean script, the usual answer: no JSON parser to load
            return []
        import json

        return [Diagnostic.from_json(d) for d in json.loads(text)]
    except (OSError, ValueError):  # absent, or not what we wrote: check again
        return None


def _keep(file: Path | None, found: list[Diagnostic]) -> None:
    import json

    if file is None:
        return
    tmp = file.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps([to_dict(d) for d in found]), "utf-8")
        tmp.replace(file)
    except OSError:
        pass  # a cache that cannot be written only costs time


def perl_syntax(path: Path, perl: str | None = None) -> list[Diagnostic]:
    """Parse the script statically with PPI; nothing in it runs. Findings are cached."""
    found = _perl_and_source(path, perl)
    if not isinstance(found, tuple):
        return found
    exe, source = found
    cache = _cache_file("perl-syntax", exe, path, source)
    cached = _cached(cache)
    if cached is not None:
        return cached
    out, lasting = _perl_syntax(exe, path, source)
    if lasting:
        _keep(cache, out)
    return out


def _perl_syntax(exe: str, path: Path, source: bytes) -> tuple[list[Diagnostic], bool]:
    """The static check's findings, and whether they say something about the script itself
    (and may be kept) rather than about this attempt (PPI missing, a failed run)."""
    import subprocess

    try:
        done = subprocess.run([exe, str(PERL_CHECK)], input=source, capture_output=True,
                              timeout=20, env=_SAFE_ENV, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [make_diagnostic("QCB402", f"the Perl syntax check failed: {exc}",
                                file=str(path))], False
    if done.returncode != 0:  # PPI is not installed: nothing can be said without running code
        return [], False
    out: list[Diagnostic] = []
    for row in done.stdout.decode("utf-8", "replace").splitlines():
        line, _, rest = row.partition("\t")
        column, _, msg = rest.partition("\t")
        if line.isdigit() and column.isdigit():
            out.append(_perl_diagnostic(path, source, int(line), int(column), msg))
    return out, True


def perl_compile(path: Path, perl: str | None = None) -> list[Diagnostic]:
    """`perl -c` the script: finds every compile error, but RUNS its BEGIN and use blocks.

    The script is compiled with `qb` marked as loaded, so `use qb;` passes as at run time.
    """
    import subprocess

    found = _perl_and_source(path, perl)
    if not isinstance(found, tuple):
        return found
    exe, source = found
    shown = re.sub(r'["\r\n]', "_", str(path)).encode("utf-8", "replace")
    program = (b"BEGIN { $INC{'qb.pm'} = 'qbcallbacks' }\n#line 1 \"" + shown + b"\"\n"
               + source)
    try:
        done = subprocess.run([exe, "-c", "-"], input=program, capture_output=True,
                              timeout=20, env=_SAFE_ENV, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [make_diagnostic("QCB402", f"perl -c could not check the script: {exc}",
                                file=str(path))]
    if done.returncode == 0:
        return []
    stderr = done.stderr.decode("utf-8", "replace")
    error = _PERL_ERROR.search(stderr)
    line = int(error["line"]) if error else 1
    msg = error["msg"] if error else (stderr.strip().splitlines() or ["failed"])[0]
    return [_perl_diagnostic(path, source, line, 1, msg)]


class Validators(Mapping[str, Validator]):
    """A script checker per registered extension (with the dot), looked up as asked for.

    Ours need no runtime module; a site's runtime is built (cheaply, it starts nothing) and
    its `validate` used. Asking about a built-in extension reads no entry points; asking about
    another, or listing them all, does (see `registry`).
    """

    def __init__(self, *, compile_perl: bool = False) -> None:
        self._light: dict[str, Validator] = {
            ".py": python_syntax, ".qcb": qcb_syntax,
            ".pl": perl_compile if compile_perl else perl_syntax,
        }
        self._site: dict[str, Validator | None] = {}

    def _get(self, key: str) -> Validator | None:
        light = self._light.get(key)
        ext = key[1:]
        if light is not None or key[:1] != "." or ext[:1] == "." or ext != ext.lower():
            return light
        if key not in self._site:
            try:  # an entry point that is not a runtime serves nothing
                found: Validator | None = runtime_for(key)().validate
            except RuntimeNotFound:
                found = None
            self._site[key] = found
        return self._site[key]

    def __getitem__(self, key: str) -> Validator:
        found = self._get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._get(key) is not None

    def __iter__(self) -> Iterator[str]:
        every = [f".{ext}" for ext in references()]
        return iter([key for key in every if self._get(key) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def validators(*, compile_perl: bool = False) -> Validators:
    """A script checker per registered extension (with the dot); see `Validators`."""
    return Validators(compile_perl=compile_perl)
