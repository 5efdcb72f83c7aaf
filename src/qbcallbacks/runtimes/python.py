"""Python callbacks."""

from __future__ import annotations

from pathlib import Path

from ..errors import Diagnostic, make_diagnostic
from .base import Invocation, Runtime, RunResult


class PythonRuntime(Runtime):
    extensions = ("py",)

    def validate(self, path: Path) -> list[Diagnostic]:
        """Compile the script; a syntax error comes back with its line and column."""
        try:
            source = path.read_bytes()
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

    def run(self, invocation: Invocation) -> RunResult:
        raise NotImplementedError("Python runs come with the runtimes work")
