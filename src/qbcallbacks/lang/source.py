"""Turning files into the text the parsers read, safely, and bounding what is reported.

Only regular files are ever opened, their size is checked with `stat` before reading and the
read itself is bounded, so a FIFO, a device, a directory or a huge file answers at once with a
diagnostic. :class:`DiagnosticBudget` keeps the diagnostics of one file to a set number and
counts the rest, so that a file of bad lines costs no more than a file of good ones.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ..errors import Diagnostic, Severity, SourceError, make_diagnostic
from ..model.languages import QCB_EXTENSION, SCRIPT_LANGUAGES, extension_of
from ..model.limits import Limits, default_limits

SourceKind = Literal["config", "qcb", "script", "qbconf"]
_SIZE_CODES = {"config": "QCB007", "qcb": "QCB008", "script": "QCB009", "qbconf": "QCB018"}
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def decode_source(data: bytes, file: str) -> str:
    """Decode UTF-8 (a byte order mark is tolerated and kept for the grammar to skip).

    Raises :class:`SourceError` with the line and column of the first byte that is not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise SourceError([make_diagnostic(
            "QCB001", f"byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8",
            file=file, line=line, column=column)]) from None


def kind_of(path: str | Path) -> SourceKind:
    """The kind of source a file name suggests: `.qcb`, a script, or else a config."""
    ext = extension_of(str(path))
    if ext == QCB_EXTENSION:
        return "qcb"
    if ext in SCRIPT_LANGUAGES:
        return "script"
    return "config"


def size_limit(kind: SourceKind, limits: Limits) -> int:
    """The byte limit of one kind of source file."""
    return {"config": limits.max_config_bytes, "qcb": limits.max_qcb_bytes,
            "script": limits.max_script_bytes, "qbconf": limits.max_qbconf_bytes}[kind]


def file_kind_name(mode: int) -> str:
    """What a non-regular file is, in words, for a diagnostic."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a link"
    return "not a regular file"


def source_file_problem(path: str | Path, *, kind: SourceKind | None = None,
                        limits: Limits | None = None, root: str | Path | None = None,
                        display: str | None = None) -> Diagnostic | None:
    """Why the file at `path` must not be read, without opening it; None if it may be.

    Checks, with `lstat`/`stat` only: it exists and can be reached, a link stays inside `root`
    (when given), the target is a regular file, and its size is within the kind's limit.
    """
    limits = default_limits() if limits is None else limits
    kind = kind_of(path) if kind is None else kind
    shown = str(path) if display is None else display
    name = Path(path).name

    def problem(code: str, message: str) -> Diagnostic:
        return make_diagnostic(code, message, file=shown)

    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(path)
            if root is not None:
                real_root = os.path.realpath(root)
                if os.path.commonpath([real_root, target]) != real_root:
                    return problem("QCB011", f"{name} is a link to {target!r}, outside "
                                   f"{str(root)!r}; it is not read")
            info = os.stat(path)
    except FileNotFoundError:
        return problem("QCB001", f"cannot read {name}: it does not exist (or is a broken link)")
    except PermissionError:
        return problem("QCB013", f"cannot reach {name}: permission denied on it or on a "
                       "directory above it")
    except OSError as exc:
        return problem("QCB015", f"cannot read {name}: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return problem("QCB012", f"{name} is {file_kind_name(info.st_mode)}, not a regular "
                       "file; it is not read")
    limit = size_limit(kind, limits)
    if info.st_size > limit:
        return too_big(kind, shown, name, info.st_size, limit)
    return None


def too_big(kind: SourceKind, shown: str, name: str, size: int | None,
            limit: int) -> Diagnostic:
    """The size diagnostic (QCB007-QCB009, QCB018) of a file or buffer over its limit."""
    at_least = "more than" if size is None else f"{size} bytes,"
    return make_diagnostic(
        _SIZE_CODES[kind], f"{name} is {at_least} over the limit of {limit} bytes for a "
        f"{kind} file; it is not read (raise QBCALLBACKS_{_env_name(kind)} to allow it)",
        file=shown)


def _env_name(kind: SourceKind) -> str:
    field = {"config": "max_config_bytes", "qcb": "max_qcb_bytes", "script": "max_script_bytes",
             "qbconf": "max_qbconf_bytes"}[kind]
    return field.upper()


def read_source_bytes(path: str | Path, *, kind: SourceKind | None = None,
                      limits: Limits | None = None, root: str | Path | None = None,
                      display: str | None = None) -> bytes:
    """The bytes of a regular file within its size limit; :class:`SourceError` otherwise.

    The file is checked with `stat` first (a FIFO or device is never opened), opened without
    following a final link and without blocking, checked again on the open descriptor, and
    read no further than the limit allows.
    """
    limits = default_limits() if limits is None else limits
    kind = kind_of(path) if kind is None else kind
    shown = str(path) if display is None else display
    found = source_file_problem(path, kind=kind, limits=limits, root=root, display=shown)
    if found is not None:
        raise SourceError([found])
    limit = size_limit(kind, limits)
    name = Path(path).name
    try:
        fd = os.open(os.path.realpath(path), _OPEN_FLAGS)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # replaced since the check above
                raise SourceError([make_diagnostic(
                    "QCB012", f"{name} is {file_kind_name(info.st_mode)}, not a regular file; "
                    "it is not read", file=shown)])
            data = read_at_most(fd, limit)
        finally:
            os.close(fd)
    except PermissionError:
        raise SourceError([make_diagnostic(
            "QCB001", f"cannot read {name}: permission denied", file=shown)]) from None
    except MemoryError:
        raise SourceError([make_diagnostic(
            "QCB014", f"out of memory while reading {name}", file=shown)]) from None
    except OSError as exc:
        raise SourceError([make_diagnostic(
            "QCB015", f"cannot read {name}: {exc.strerror or exc}", file=shown)]) from None
    if len(data) > limit:  # it grew since the check
        raise SourceError([too_big(kind, shown, name, None, limit)])
    return data


def read_at_most(fd: int, limit: int, first: int = 1 << 20) -> bytes:
    """What an open descriptor holds, but never more than `limit + 1` bytes (so a caller sees
    a file that grew past its limit without reading all of it). `first` is the size of the
    first read: a file's known size plus one reads a small file in one call."""
    chunks: list[bytes] = []
    total, want = 0, min(first, limit + 1)
    while total <= limit:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = min(1 << 20, limit + 1 - total)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_source_file(path: str | Path, *, kind: SourceKind | None = None,
                     limits: Limits | None = None, root: str | Path | None = None,
                     display: str | None = None) -> str:
    """The UTF-8 text of a regular file within its size limit; :class:`SourceError` otherwise.

    `kind` defaults from the file name (`.qcb`, `.py`/`.pl`, else a config); a link must stay
    inside `root` when it is given. This is the one way the project reads files users wrote.
    """
    shown = str(path) if display is None else display
    data = read_source_bytes(path, kind=kind, limits=limits, root=root, display=shown)
    try:
        return decode_source(data, shown)
    except MemoryError:
        raise SourceError([make_diagnostic(
            "QCB014", f"out of memory while decoding {Path(path).name}", file=shown)]) from None


def iter_lines(text: str) -> Iterator[str]:
    """Physical lines without their LF / CRLF ends, one at a time (no list of every line);
    a leading byte order mark is skipped and a final line end does not start a line."""
    start = 1 if text.startswith("\ufeff") else 0
    end = len(text)
    find = text.find
    while start < end:
        stop = find("\n", start)
        if stop < 0:
            stop = end
        line = text[start:stop]
        yield line[:-1] if line.endswith("\r") else line
        start = stop + 1


_NEWLINES = re.compile(r"\n+")


def iter_line_runs(text: str) -> Iterator[str | int]:
    """Like :func:`iter_lines`, but a run of empty lines comes as one int (how many), found
    by one regex match: a file of blank lines costs no Python work per line."""
    start = 1 if text.startswith("\ufeff") else 0
    end = len(text)
    find, newlines = text.find, _NEWLINES.match
    while start < end:
        if text[start] == "\n":
            m = newlines(text, start)
            assert m is not None
            yield m.end() - start
            start = m.end()
            continue
        stop = find("\n", start)
        if stop < 0:
            stop = end
        line = text[start:stop]
        yield line[:-1] if line.endswith("\r") else line
        start = stop + 1


def split_lines(text: str) -> list[str]:
    """Physical lines without their LF / CRLF ends; a final line end does not start a line."""
    return list(iter_lines(text))


def line_too_long(raw: str, number: int, file: str, limit: int) -> Diagnostic:
    """The diagnostic for a line over the length limit; only its start is echoed."""
    return make_diagnostic(
        "QCB006", f"line is {len(raw)} characters long, over the limit of {limit}; it is not "
        "parsed", file=file, line=number, column=limit + 1, end_column=limit + 2)


class DiagnosticBudget:
    """The diagnostics of one file, up to a limit; past it they are only counted.

    Callers ask :attr:`full` before explaining a problem, so that explaining 200,000 bad lines
    costs nothing once the limit is reached; :meth:`result` ends with one summary line.
    """

    __slots__ = ("_dropped", "_dropped_errors", "_has_error", "file", "full", "kept", "limit")

    def __init__(self, file: str, limit: int) -> None:
        self.file = file
        self.limit = limit
        self.kept: list[Diagnostic] = []
        #: Whether the limit is reached; a plain attribute, since parsers ask once a line.
        self.full = limit <= 0
        self._dropped = 0
        self._dropped_errors = 0
        self._has_error = False

    @property
    def has_error(self) -> bool:
        return self._has_error

    @property
    def tally(self) -> tuple[int, int, int]:
        """Where the budget stands, for :meth:`severities_since`."""
        return len(self.kept), self._dropped, self._dropped_errors

    def severities_since(self, tally: tuple[int, int, int]) -> tuple[Severity, ...]:
        """The severity of each problem kept or counted since `tally` was taken (dropped
        problems are told apart only as errors or not, which is all counting needs)."""
        kept, dropped, errors = tally
        new_errors = self._dropped_errors - errors
        others = self._dropped - dropped - new_errors
        error: tuple[Severity, ...] = ("error",)
        warning: tuple[Severity, ...] = ("warning",)
        return (*(d.severity for d in self.kept[kept:]), *error * new_errors, *warning * others)

    def count(self, severity: Severity) -> None:
        """Record a problem that was not explained because the budget is spent."""
        self._dropped += 1
        if severity == "error":
            self._dropped_errors += 1
            self._has_error = True

    def append(self, diagnostic: Diagnostic) -> None:
        if diagnostic.severity == "error":
            self._has_error = True
        if self.full:
            self.count(diagnostic.severity)
        else:
            self.kept.append(diagnostic)
            self.full = len(self.kept) >= self.limit

    def extend(self, diagnostics: Iterator[Diagnostic] | list[Diagnostic]
               | tuple[Diagnostic, ...]) -> None:
        for d in diagnostics:
            self.append(d)

    def result(self) -> tuple[Diagnostic, ...]:
        """The kept diagnostics and, if any were dropped, the summary."""
        if not self._dropped:
            return tuple(self.kept)
        return (*self.kept, summary_diagnostic(self.file, self._dropped, self._dropped_errors,
                                               self.limit))


def summary_diagnostic(file: str, dropped: int, dropped_errors: int, limit: int) -> Diagnostic:
    """The one line that stands for the diagnostics left out of a file's report."""
    return make_diagnostic(
        "QCB010", f"{dropped} more problem(s) in this file not shown ({dropped_errors} "
        f"error(s)); at most {limit} are reported per file", file=file,
        severity="error" if dropped_errors else "warning")


def cap_diagnostics(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic],
                    limit: int) -> tuple[Diagnostic, ...]:
    """At most `limit` diagnostics per file, in the given order, each file's excess (and any
    earlier summaries) folded into one summary after its last kept diagnostic."""
    per_file: dict[str, int] = {}
    dropped: dict[str, list[int]] = {}
    kept: list[Diagnostic] = []
    for d in diagnostics:
        if d.code == "QCB010":
            counts = _summary_counts(d)
            acc = dropped.setdefault(d.file, [0, 0])
            acc[0] += counts[0]
            acc[1] += counts[1]
            continue
        seen = per_file.get(d.file, 0)
        if seen >= limit:
            acc = dropped.setdefault(d.file, [0, 0])
            acc[0] += 1
            acc[1] += d.severity == "error"
            continue
        per_file[d.file] = seen + 1
        kept.append(d)
    if not dropped:
        return tuple(kept)
    out: list[Diagnostic] = []
    last_of = {d.file: i for i, d in enumerate(kept)}
    for i, d in enumerate(kept):
        out.append(d)
        if last_of[d.file] == i and d.file in dropped:
            n, errors = dropped.pop(d.file)
            out.append(summary_diagnostic(d.file, n, errors, limit))
    out.extend(summary_diagnostic(f, n, e, limit) for f, (n, e) in dropped.items())
    return tuple(out)


_SUMMARY = re.compile(r"(\d+) more problem\(s\) in this file not shown \((\d+) error")


def _summary_counts(d: Diagnostic) -> tuple[int, int]:
    m = _SUMMARY.match(d.message)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big file is parsed.

    A 100k-line parse allocates a few hundred thousand small objects, none in a cycle; the
    collector would rescan the growing heap again and again, which costs more than the parse
    itself. Reference counting still frees everything; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
