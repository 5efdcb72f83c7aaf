"""Who could change what the engine runs: the StrictModes check of callback directories.

Callbacks run as the supervisor's user, often root. As cron and sshd's StrictModes do, a
callback directory, its `callbacks.conf` and every script it names must be writable only by
their owner, and owned by root or by the supervisor's user; the directory's parents, up to
`/`, must be too, since whoever can rename an entry of a parent can swap the whole directory.
A parent that is world-writable but sticky and owned by a trusted user (`/tmp`) is accepted:
the sticky bit stops others from renaming or removing what they do not own.

A problem is an error when the engine runs as root (`euid` 0): the rule, or the whole
directory, is not loaded. Under another user it is a warning, since that user can only hand
its own rights away. `euid` defaults to this process's and is a parameter so tests can stand
in for either case.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from ..errors import Diagnostic, make_diagnostic
from ..lang.config import RuleSite

Severity = Literal["error", "warning"]
_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def _severity(euid: int) -> Severity:
    return "error" if euid == 0 else "warning"


def _who(mode: int) -> str:
    return " and ".join(w for w, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
                        if mode & bit)


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def directory_problems(directory: str | Path, *, euid: int | None = None) -> list[Diagnostic]:
    """Problems of a callback directory itself and of each of its parents."""
    euid = os.geteuid() if euid is None else euid
    severity = _severity(euid)
    trusted = {0, euid}
    real = Path(os.path.realpath(directory))
    out: list[Diagnostic] = []
    for index, path in enumerate((real, *real.parents)):
        try:
            info = path.stat()
        except OSError:
            continue
        mode, shown = info.st_mode, str(path)
        if index == 0:
            if mode & _WRITABLE:
                out.append(make_diagnostic(
                    "QCB210", f"callback directory {shown} is writable by {_who(mode)}: they can "
                    f"replace its scripts, which run as the supervisor's user (chmod go-w "
                    f"{shown})", file=str(directory), severity=severity))
        elif mode & _WRITABLE and not (mode & stat.S_ISVTX and info.st_uid in trusted):
            out.append(make_diagnostic(
                "QCB212", f"{shown}, a parent of callback directory {real}, is writable by "
                f"{_who(mode)}: they can swap the directory (chmod go-w {shown})",
                file=str(directory), severity=severity))
        if info.st_uid not in trusted:
            code = "QCB211" if index == 0 else "QCB213"
            what = "callback directory" if index == 0 else f"a parent of callback directory {real},"
            out.append(make_diagnostic(
                code, f"{what} {shown} is owned by {_owner(info.st_uid)}, neither root nor the "
                f"supervisor's user", file=str(directory), severity=severity))
    return out


def file_problems(path: Path, conf: str, site: RuleSite | None = None, *,
                  euid: int | None = None) -> list[Diagnostic]:
    """Problems of `callbacks.conf` (no `site`) or of the script a rule names."""
    euid = os.geteuid() if euid is None else euid
    severity = _severity(euid)
    try:
        info = path.stat()
    except OSError:
        return []
    messages: list[tuple[str, str]] = []
    if info.st_mode & _WRITABLE:
        messages.append(("QCB201", f"{path.name} is writable by {_who(info.st_mode)}; callbacks "
                         f"run as the supervisor's user, so anyone who can edit it can run code "
                         f"there (chmod go-w {path.name})"))
    if info.st_uid not in {0, euid}:
        messages.append(("QCB211", f"{path.name} is owned by {_owner(info.st_uid)}, neither root "
                         f"nor the supervisor's user"))
    if site is None:
        return [make_diagnostic(code, msg, file=conf, severity=severity)
                for code, msg in messages]
    return [make_diagnostic(code, msg, file=conf, line=site.line, column=site.file_column,
                            end_column=site.file_column + len(site.rule.file),
                            severity=severity, source_line=site.source_line)
            for code, msg in messages]
