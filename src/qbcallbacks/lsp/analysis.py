"""Diagnostics of an open document, computed exactly as `qbcallbacks check` computes them.

A `callbacks.conf` buffer is loaded with the loader `check` uses, with the buffer standing in
for the file on disk, so missing scripts, links, permissions and script syntax come out with
the same codes, messages and ranges. Script validation (compiling Python, `perl -c`) is cached
by the script's size and modification time: a keystroke in callbacks.conf re-reads no script.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from ..config.load import CONFIG_NAME, load_directory
from ..errors import Diagnostic
from ..lang import parse_config, parse_qcb
from ..lang.near_miss import near_miss_diagnostics
from ..lang.source import size_limit, too_big
from ..model.languages import QCB_EXTENSION, extension_of
from ..model.limits import Limits, default_limits
from ..runtimes.validate import Validator, validators

DocKind = Literal["config", "qcb"]


def document_kind(path: str, language_id: str | None = None) -> DocKind | None:
    """Which language a document is in: by language id first, then by file name."""
    if language_id == "qcb" or extension_of(path) == QCB_EXTENSION:
        return "qcb"
    if language_id == "qbcallbacks" or os.path.basename(path) == CONFIG_NAME:
        return "config"
    return None


def buffer_too_big(path: str, text: str, kind: DocKind,
                   limits: Limits | None = None) -> Diagnostic | None:
    """The size diagnostic `check` gives the file (QCB007, QCB008) when the buffer is over the
    limit; such a buffer gets no other analysis, as the file would not be read."""
    limit = size_limit(kind, default_limits() if limits is None else limits)
    if len(text) * 4 <= limit:  # no UTF-8 text of this many characters can be over it
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return None
    return too_big(kind, path, os.path.basename(path), size, limit)


class CachedValidator:
    """A script check that answers from a cache while the script is unchanged."""

    def __init__(self, inner: Validator) -> None:
        self.inner = inner
        self._seen: dict[Path, tuple[tuple[int, int, int], list[Diagnostic]]] = {}

    def __call__(self, path: Path) -> list[Diagnostic]:
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return self.inner(path)
        hit = self._seen.get(path)
        if hit is not None and hit[0] == key:
            return list(hit[1])
        found = self.inner(path)
        self._seen[path] = (key, list(found))
        return found


class Analyzer:
    """Diagnostics for documents; keeps the cached runtimes between keystrokes."""

    def __init__(self) -> None:
        self.runtimes: Mapping[str, Validator] = {
            ext: CachedValidator(check) for ext, check in validators().items()}

    def diagnose(self, path: str, text: str, kind: DocKind) -> dict[str, list[Diagnostic]]:
        """Diagnostics by file path: the document's own under `path`, a named script's under
        its path. A document that is not on disk gets the checks that need no directory."""
        oversized = buffer_too_big(path, text, kind)
        if oversized is not None:
            return {path: [oversized]}
        if kind == "qcb":
            return {path: list(parse_qcb(text, path).diagnostics)}
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            parsed = parse_config(text, path, tuple(self.runtimes))
            return {path: [*parsed.diagnostics, *near_miss_diagnostics(parsed)]}
        load = load_directory(directory, runtimes=self.runtimes, text=text)
        conf = str(Path(directory) / CONFIG_NAME)
        out: dict[str, list[Diagnostic]] = {path: []}
        for d in load.diagnostics:
            out.setdefault(path if d.file == conf else d.file, []).append(d)
        return out
