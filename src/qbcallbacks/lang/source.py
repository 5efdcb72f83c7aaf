"""Turning the bytes of a file into the text the parsers read."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import SourceError, make_diagnostic


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


def split_lines(text: str) -> list[str]:
    """Physical lines without their LF / CRLF ends; a final line end does not start a line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


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
