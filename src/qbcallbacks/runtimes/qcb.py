"""qcb callbacks: the Qube command language, interpreted in the host process."""

from __future__ import annotations

from pathlib import Path

from ..errors import Diagnostic, make_diagnostic
from ..grammar import parse_qcb
from .base import Invocation, Runtime, RunResult


class QcbRuntime(Runtime):
    extensions = ("qcb",)

    def validate(self, path: Path) -> list[Diagnostic]:
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return [make_diagnostic("QCB001", f"cannot read the script: {exc}", file=str(path))]
        return list(parse_qcb(text, str(path)).diagnostics)

    def run(self, invocation: Invocation) -> RunResult:
        raise NotImplementedError("qcb runs come with the runtimes work")
