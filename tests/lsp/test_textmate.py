"""The TextMate grammars colour every conformance vector the way the parser reads it.

Node tokenizes with vscode-textmate on the oniguruma engine (what VS Code runs); each code
point's scope must name the kind of the parser's piece there. The pieces come from the
outline, which tests/lang/test_near_miss.py holds equal to Lark's own tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from qbcallbacks.lang.outline import outline_config_line, outline_qcb
from qbcallbacks.lang.source import split_lines
from qbcallbacks.model.documents import QCB_COMMANDS
from qbcallbacks.model.triggers import BUILTIN_NAMES, EVENT_TYPES, GLOBAL_TYPES
from support.paths import ROOT
from support.vectors import vector_cases

EXTENSION = ROOT / "editors" / "vscode"
_SCOPES = {
    "string.unquoted.script": "file", "support.constant.event.builtin": "name*",
    "entity.name.event.user": "name", "storage.type.event": "type",
    "variable.language.context": "context*", "variable.other.context": "context",
    "constant.other.extra": "extra", "keyword.operator.logical": "operator",
    "punctuation.section.parens": "paren", "comment.line.number-sign": "comment",
    "support.function.command": "command", "punctuation.separator.dash": "dash",
    "keyword.operator.assignment": "equals",
}


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed")
    if not (EXTENSION / "node_modules" / "vscode-textmate").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "npm is needed to install vscode-textmate"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=EXTENSION,
                       check=True, timeout=300)
    return found


def tokenize(node: str, scope: str, lines: list[str]) -> list[list[str | None]]:
    """Per line, the kind each code point is coloured as (None for plain text)."""
    done = subprocess.run([node, str(EXTENSION / "test" / "tokenize.js")],
                          input=json.dumps({"scope": scope, "lines": lines}),
                          capture_output=True, text=True, timeout=120, check=True)
    out = []
    for line, tokens in zip(lines, json.loads(done.stdout), strict=True):
        units: list[str | None] = []
        for start, end, name in tokens:
            kind = next((k for prefix, k in _SCOPES.items() if name.startswith(prefix)), None)
            if name.startswith("invalid"):
                kind = "invalid"
            units += [kind] * (end - start)
        # UTF-16 units back to code points: a character outside the BMP takes two.
        kinds, i = [], 0
        for ch in line:
            kinds.append(units[i] if i < len(units) else None)
            i += 2 if ord(ch) > 0xFFFF else 1
        out.append(kinds)
    return out


def expected(outline_pieces: tuple[object, ...], length: int) -> list[str | None]:
    kinds: list[str | None] = [None] * length
    for p in outline_pieces:
        kind, start, end, text = p  # type: ignore[misc]
        mark = kind
        if (kind == "name" and text.lower() in BUILTIN_NAMES) or (
                kind == "context" and text.lower() in ("self", "parent")):
            mark = f"{kind}*"
        for i in range(start, end):
            kinds[i] = mark
    return kinds


def good(cases: list[object]) -> list[dict[str, object]]:
    return [c.values[0] for c in cases if c.values[0].get("canonical") is not None]  # type: ignore[attr-defined]


def test_config_and_trigger_vectors(node: str) -> None:
    lines = [f"x.py = {c['input']}" for c in good(vector_cases("language-triggers.json"))]
    for case in good(vector_cases("language-config.json")):
        lines += split_lines(str(case["input"]))
    assert len(lines) > 20
    got = tokenize(node, "source.qbcallbacks", lines)
    for line, kinds in zip(lines, got, strict=True):
        want = expected(outline_config_line(1, line).pieces, len(line))
        assert kinds == want, line


def test_qcb_vectors(node: str) -> None:
    lines: list[str] = []
    for case in good(vector_cases("language-qcb.json")):
        lines += split_lines(str(case["input"]))
    assert lines
    got = tokenize(node, "source.qcb", lines)
    for line, kinds in zip(lines, got, strict=True):
        [outline] = outline_qcb(line + "\n") or [None]
        want = expected(outline.pieces if outline else (), len(line))
        assert kinds == want, line


def test_bad_text_is_marked_invalid(node: str) -> None:
    [conf] = tokenize(node, "source.qbcallbacks", ["x.py = done-job-self && ??"])
    assert conf[-1] == "invalid"
    [qcb] = tokenize(node, "source.qcb", ["kil-self"])
    assert set(qcb) == {"invalid"}


def test_extension_manifest_names_the_server_languages_and_grammars() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    languages = {lang["id"]: lang for lang in manifest["contributes"]["languages"]}
    assert set(languages) == {"qbcallbacks", "qcb"}  # the ids the server accepts
    assert languages["qbcallbacks"]["filenames"] == ["callbacks.conf"]
    assert languages["qcb"]["extensions"] == [".qcb"]
    for grammar in manifest["contributes"]["grammars"]:
        data = json.loads((EXTENSION / grammar["path"]).read_text(encoding="utf-8"))
        assert data["scopeName"] == grammar["scopeName"]
    # The entry point is the bundle the prepublish script builds from extension.js (the
    # bundle test packages it); a checkout that never ran npm has no dist/ yet.
    bundle = manifest["scripts"]["bundle"]
    assert "esbuild extension.js " in bundle
    assert f"--outfile={manifest['main'].removeprefix('./')}" in bundle
    assert manifest["scripts"]["vscode:prepublish"] == "npm run bundle"
    assert "qbcallbacks" in (EXTENSION / "extension.js").read_text(encoding="utf-8")
    assert (EXTENSION / "package-lock.json").is_file()


def test_every_keyword_of_the_models_is_coloured_as_the_parser_reads_it(node: str) -> None:
    commands = [c.upper() if i % 2 else c for i, c in enumerate(QCB_COMMANDS)]
    got = tokenize(node, "source.qcb", [*commands, "kill-selfie", "mail"])
    for line, kinds in zip(commands, got, strict=False):
        assert set(kinds) == {"command"}, line
    assert set(got[-2]) == {"invalid"} and set(got[-1]) == {"invalid"}
    lines = [f"a.py = {name}-{typ}-self" for name in sorted(BUILTIN_NAMES)
             for typ in EVENT_TYPES if typ not in GLOBAL_TYPES]
    for line, kinds in zip(lines, tokenize(node, "source.qbcallbacks", lines), strict=True):
        assert kinds == expected(outline_config_line(1, line).pieces, len(line)), line
