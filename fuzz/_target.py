"""Running one check under atheris: coverage-guided, with libFuzzer's options from argv."""

from __future__ import annotations

import sys

import atheris


def main(name: str) -> None:
    """Fuzz the check called `name` (see checks.CHECKS); argv holds libFuzzer options and
    corpus directories. An exception escaping the check is a finding: libFuzzer saves the
    input under -artifact_prefix and exits non-zero."""
    with atheris.instrument_imports(include=["qbcallbacks", "checks"]):
        import checks
    check = checks.CHECKS[name]
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
