"""Printing diagnostics in the formats linters and CI servers read.

Columns are 1-based and count Unicode code points; SARIF is told so (`columnKind`). Every
format writes to standard output; the human summary line is the caller's business. The
libraries only the machine formats need (json, XML, hashing, package metadata) are imported
by those formats, so the default text output of `check` does not pay for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath

from ..errors import CODES, Diagnostic

OUTPUT_FORMATS = ("text", "concise", "json", "json-lines", "github", "gitlab", "sarif", "junit")

SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")


def _version() -> str:
    from .._version import __version__

    return __version__


def render(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    """The whole output of one format, ending with a newline unless it is empty."""
    if fmt in ("json", "json-lines", "gitlab", "sarif"):
        return _render_json(diagnostics, fmt)
    if fmt == "junit":
        return junit(diagnostics)
    if fmt == "github":
        return "".join(github_line(d) + "\n" for d in diagnostics)
    if fmt == "concise":
        return "".join(_head(d) + "\n" for d in diagnostics)
    return "".join(d.render() + "\n" for d in diagnostics)


def _render_json(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    import json

    if fmt == "json":
        return json.dumps([d.to_json() for d in diagnostics], indent=2) + "\n"
    if fmt == "json-lines":
        return "".join(json.dumps(d.to_json()) + "\n" for d in diagnostics)
    if fmt == "gitlab":
        return json.dumps(gitlab(diagnostics), indent=2) + "\n"
    return json.dumps(sarif(diagnostics), indent=2) + "\n"


def _head(d: Diagnostic) -> str:
    return f"{d.file}:{d.line}:{d.column}: {d.severity}: {d.message} [{d.code}]"


def statistics(diagnostics: Sequence[Diagnostic]) -> str:
    """Counts by code, most frequent first: `count  code  meaning`."""
    counts = Counter(d.code for d in diagnostics)
    return "".join(f"{n:>5}  {code}  {CODES.get(code, '')}\n"
                   for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(d: Diagnostic) -> str:
    """A GitHub Actions workflow command that annotates the span in the pull request."""
    level = "error" if d.severity == "error" else "warning"
    props = (f"file={_escape_property(d.file)},line={d.line},col={d.column},"
             f"endLine={d.end_line},endColumn={d.end_column},title={d.code}")
    return f"::{level} {props}::{_escape_data(f'{d.message} [{d.code}]')}"


def _fingerprint(d: Diagnostic) -> str:
    import hashlib

    key = f"{d.file}\0{d.line}\0{d.column}\0{d.code}\0{d.message}"
    return hashlib.sha256(key.encode()).hexdigest()


def gitlab(diagnostics: Sequence[Diagnostic]) -> list[dict[str, object]]:
    """GitLab's code quality report (a JSON array of issues)."""
    return [{
        "description": f"{d.code}: {d.message}",
        "check_name": d.code,
        "fingerprint": _fingerprint(d),
        "severity": "major" if d.severity == "error" else "minor",
        "location": {"path": d.file, "lines": {"begin": d.line, "end": d.end_line}},
    } for d in diagnostics]


def _uri(path: str) -> str:
    """A relative reference for a relative path (what code scanning expects), a file URI for
    an absolute one."""
    from urllib.parse import quote

    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + quote(pure.as_posix(), safe="/")
    return quote(pure.as_posix(), safe="/")


def sarif(diagnostics: Sequence[Diagnostic]) -> dict[str, object]:
    """A SARIF 2.1.0 log with one run; each code used is a rule of the driver."""
    from ..code_docs import CODE_DOCS

    used = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(used)}
    rules: list[dict[str, object]] = []
    for code in used:
        rule: dict[str, object] = {"id": code,
                                   "shortDescription": {"text": CODES.get(code, code)}}
        doc = CODE_DOCS.get(code)
        if doc is not None:
            rule["fullDescription"] = {"text": doc.why}
            rule["help"] = {"text": doc.fix}
        rules.append(rule)
    results = [{
        "ruleId": d.code,
        "ruleIndex": index[d.code],
        "level": "error" if d.severity == "error" else "warning",
        "message": {"text": d.message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(d.file)},
            "region": {"startLine": d.line, "startColumn": d.column,
                       "endLine": d.end_line, "endColumn": d.end_column},
        }}],
    } for d in diagnostics]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "qbcallbacks", "version": _version(),
                                "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def junit(diagnostics: Sequence[Diagnostic]) -> str:
    """JUnit XML: one test case per finding, failing for an error and passing with the finding
    in its output for a warning; a clean run is one passing case (CI servers hide empty suites)."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="qbcallbacks check")
    errors = 0
    for d in diagnostics:
        case = ET.SubElement(suite, "testcase", classname=d.file,
                             name=f"{d.code} at {d.file}:{d.line}:{d.column}")
        if d.severity == "error":
            errors += 1
            failure = ET.SubElement(case, "failure", message=f"{d.message} [{d.code}]",
                                    type=d.code)
            failure.text = d.render()
        else:
            out = ET.SubElement(case, "system-out")
            out.text = d.render()
    if not diagnostics:
        ET.SubElement(suite, "testcase", classname="qbcallbacks", name="check")
    total = max(1, len(diagnostics))
    suite.set("tests", str(total))
    suite.set("failures", str(errors))
    suite.set("errors", "0")
    root = ET.Element("testsuites", tests=str(total), failures=str(errors), errors="0")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") \
        + "\n"
