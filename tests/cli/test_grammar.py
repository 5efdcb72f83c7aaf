"""`qbcallbacks grammar`: packaged grammars, their paths, the keyword table and the vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qbcallbacks.cli import main
from qbcallbacks.lang import grammar_text
from qbcallbacks.lang.vocabulary import vocabulary_json
from support.paths import ROOT, VECTORS


@pytest.mark.parametrize(("name", "file"), [("trigger", "trigger.lark"),
                                            ("callbacks", "callbacks.lark"),
                                            ("qcb", "qcb.lark"), ("common", "common.lark")])
def test_grammar_prints_the_packaged_file_and_its_path(
        name: str, file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grammar", name]) == 0
    assert capsys.readouterr().out == grammar_text(file)
    assert main(["grammar", name, "--path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == file and path.read_text(encoding="utf-8") == grammar_text(file)


def test_default_grammar_is_callbacks_conf(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grammar"]) == 0
    assert capsys.readouterr().out == grammar_text("callbacks.lark")


def test_vocabulary_is_the_completion_table_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grammar", "--vocabulary"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table == vocabulary_json()
    assert {"name", "type", "context", "operator", "command"} == set(table)


def test_vectors_directory_holds_the_spec_vectors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grammar", "--vectors"]) == 0
    found = Path(capsys.readouterr().out.strip())
    assert sorted(p.name for p in found.glob("*.json")) == sorted(
        p.name for p in VECTORS.glob("*.json"))


def test_unknown_grammar_is_a_usage_error() -> None:
    assert main(["grammar", "yaml"]) == 2


def test_lsp_and_grammar_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "lsp" in out and "grammar" in out
    assert (ROOT / "setup.py").is_file()
