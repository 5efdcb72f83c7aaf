"""Every diagnostic code is explained once, and `spec/codes.md` is that table rendered."""

from __future__ import annotations

import re

from qbcallbacks.cli import main
from qbcallbacks.code_docs import CODE_DOCS, codes_markdown, explain
from qbcallbacks.errors import CODES
from support.paths import ROOT


def test_every_code_is_explained_and_nothing_else() -> None:
    assert set(CODE_DOCS) == set(CODES)
    for code, doc in CODE_DOCS.items():
        assert re.fullmatch(r"QCB\d{3}", code)
        assert doc.why.strip() and doc.fix.strip(), code
        assert doc.why != doc.fix


def test_spec_codes_md_is_generated_from_the_table() -> None:
    spec = (ROOT / "spec" / "codes.md").read_text()
    assert spec == codes_markdown(), (
        "regenerate: python -m qbcallbacks.code_docs > spec/codes.md")
    assert re.findall(r"^## (QCB\d{3}):", spec, re.M) == sorted(CODES)


def test_explain_command_prints_the_entry(capsys) -> None:
    assert main(["explain", "QCB103"]) == 0
    out = capsys.readouterr().out
    assert out == explain("QCB103")
    assert out.startswith("QCB103: unknown event type\n")
    assert "Why it matters:" in out and "How to fix:" in out
    assert main(["rule", "103"]) == 0 and capsys.readouterr().out == out
    assert main(["explain", "QCB999"]) == 2
    assert "QCB999" in capsys.readouterr().err
    assert main(["explain", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(CODES)
