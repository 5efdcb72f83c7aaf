"""Perl callbacks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..errors import Diagnostic, make_diagnostic
from .base import Invocation, Runtime, RunResult

_PERL_ERROR = re.compile(r"^(?P<msg>.*?) at (?P<file>.+?) line (?P<line>\d+)", re.M)


class PerlRuntime(Runtime):
    extensions = ("pl",)

    def validate(self, path: Path) -> list[Diagnostic]:
        """`perl -c` the script when perl is installed; without perl there is nothing to say."""
        perl = shutil.which("perl")
        if perl is None:
            return []
        try:
            done = subprocess.run([perl, "-c", "--", str(path)], capture_output=True, text=True,
                                  timeout=20, env={"PATH": "/usr/bin:/bin", "PERL5LIB": ""},
                                  check=False, errors="replace")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [make_diagnostic("QCB402", f"perl -c could not check the script: {exc}",
                                    file=str(path))]
        if done.returncode == 0:
            return []
        found = _PERL_ERROR.search(done.stderr)
        line = int(found["line"]) if found else 1
        msg = found["msg"] if found else (done.stderr.strip().splitlines() or ["failed"])[0]
        lines = path.read_text(errors="replace").splitlines()
        src = lines[line - 1] if 0 < line <= len(lines) else None
        return [make_diagnostic("QCB402", f"Perl syntax error: {msg}", file=str(path), line=line,
                                column=1, end_column=max(2, len(src or "") + 1),
                                source_line=src)]

    def run(self, invocation: Invocation) -> RunResult:
        raise NotImplementedError("Perl runs come with the runtimes work")
