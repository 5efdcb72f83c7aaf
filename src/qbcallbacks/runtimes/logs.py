"""The per-job callback logs (`<logdir>/<jobid>.cb`), bounded in size.

Every run appends a header line and its output to its job's log, as the original does. A log
that would grow past `cap` bytes is rotated first: `<jobid>.cb` becomes `<jobid>.cb.1`, the
older ones shift up, and at most `backups` old files are kept, so a job whose callbacks flood
costs at most `cap * (backups + 1)` bytes. This is the scheme of the standard library's
`logging.handlers.RotatingFileHandler`, written out here because the log is opened with
`O_NOFOLLOW` (a link planted in the log directory is not followed) and written with one
`write` per run, which that handler does not do.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import Invocation, RunResult

log = logging.getLogger("qbcallbacks.runtimes")

#: Default size cap of one job's log, and how many rotated files are kept.
DEFAULT_LOG_CAP = 1024 * 1024
DEFAULT_LOG_BACKUPS = 2

_lock = threading.Lock()  # rotation and append of one log must not interleave


def log_entry(invocation: Invocation, result: RunResult) -> bytes:
    """The text one run adds to its job's log: a header line, the output, the error."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    code = "" if result.exit_code is None else f", exit {result.exit_code}"
    lines = [f"--- {stamp} {invocation.callback} on {invocation.event.format()}: "
             f"{result.status}{code} in {result.duration:.3f}s\n"]
    if result.output:
        lines.append(result.output if result.output.endswith("\n") else result.output + "\n")
    if result.output_dropped:
        lines.append(f"[{result.output_dropped} more bytes of output dropped]\n")
    if result.error and result.error not in result.output:
        lines.append(result.error if result.error.endswith("\n") else result.error + "\n")
    return "".join(lines).encode("utf-8", "replace")


def append_log(invocation: Invocation, result: RunResult, *, cap: int = DEFAULT_LOG_CAP,
               backups: int = DEFAULT_LOG_BACKUPS) -> None:
    """Append the run to its job's log, rotating first if the cap would be passed.

    A log that cannot be written only warns: a full disk must not fail the callback.
    """
    path = invocation.log_path
    if path is None:
        return
    data = log_entry(invocation, result)
    if len(data) > cap:
        data = data[:max(0, cap - 40)] + b"\n[entry cut at the log size cap]\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock:
            _rotate_if_needed(path, len(data), cap, backups)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                         | getattr(os, "O_NOFOLLOW", 0), 0o640)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
    except OSError as exc:
        log.warning("cannot write callback log %s: %s", path, exc)


def _rotate_if_needed(path: Path, incoming: int, cap: int, backups: int) -> None:
    try:
        size = os.lstat(path).st_size
    except FileNotFoundError:
        return
    if size + incoming <= cap:
        return
    if backups <= 0:
        os.unlink(path)
        return
    for n in range(backups - 1, 0, -1):
        older = Path(f"{path}.{n}")
        if older.exists() or older.is_symlink():
            os.replace(older, f"{path}.{n + 1}")
    os.replace(path, f"{path}.1")
