"""Printing diagnostics in the formats linters and CI servers read.

Columns are 1-based and count Unicode code points; SARIF is told so (`columnKind`). Every
format writes to standard output; the human summary line is the caller's business. The
libraries only the machine formats need (json, XML, hashing, package metadata) are imported
by those formats, so the default text output of `check` does not pay for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import PurePath

from ..errors import CODES, Diagnostic, terminal_safe

OUTPUT_FORMATS = ("text", "concise", "json", "json-lines", "github", "gitlab", "sarif", "junit")

SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")


def _version() -> str:
    from .._version import __version__

    return __version__


def colour_wanted(stream: object, env: Mapping[str, str]) -> bool:
    """Colour on a terminal, as most tools decide: a non-empty `FORCE_COLOR` forces it (even
    through a pipe), else a non-empty `NO_COLOR` or `TERM=dumb` turns it off."""
    if env.get("FORCE_COLOR"):
        return True
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):
        return False


_BOLD, _RED, _YELLOW, _CYAN, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m"


def _coloured(d: Diagnostic, fmt: str) -> str:
    """The text or concise form with the place in bold, the severity in red or yellow and the
    code in cyan; the caret takes the severity's colour. The text is escaped as in plain form."""
    tone = _RED if d.severity == "error" else _YELLOW
    where = f"{_BOLD}{terminal_safe(d.file)}:{d.line}:{d.column}{_RESET}"
    head = (f"{where}: {tone}{_BOLD}{d.severity}{_RESET}: {terminal_safe(d.message)} "
            f"[{_CYAN}{d.code}{_RESET}]")
    if fmt == "concise":
        return head
    rest = d.render().split("\n")[1:]
    if len(rest) == 2:
        rest[1] = f"    {tone}{rest[1][4:]}{_RESET}"
    return "\n".join([head, *rest])


def render(diagnostics: Sequence[Diagnostic], fmt: str, *, colour: bool = False) -> str:
    """The whole output of one format, ending with a newline unless it is empty; `colour`
    adds terminal colours to the text and concise formats."""
    if colour and fmt in ("text", "concise"):
        return "".join(_coloured(d, fmt) + "\n" for d in diagnostics)
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
    """The concise line, control characters escaped as in the text format."""
    return (f"{terminal_safe(d.file)}:{d.line}:{d.column}: {d.severity}: "
            f"{terminal_safe(d.message)} [{d.code}]")


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


def project_path(path: str, env: Mapping[str, str] | None = None) -> str:
    """`path` relative to `$CI_PROJECT_DIR` (GitLab's checkout) or else the working directory,
    in `/` form, when it lies below it; other paths are kept as they are."""
    import os

    env = os.environ if env is None else env
    base = env.get("CI_PROJECT_DIR") or os.getcwd()
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, os.path.abspath(base))
    except ValueError:  # another drive
        return path
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return path
    return PurePath(relative).as_posix()


def fingerprints(diagnostics: Sequence[Diagnostic], paths: Sequence[str]) -> list[str]:
    """A stable identity per finding from its path, code and text, not its line or column, so
    a finding that an edit moves stays the same finding; identical findings in one file are
    told apart by their order. A line the text refers to (`duplicate of line 3`) is left
    out of it for the same reason."""
    import hashlib
    import re

    seen: Counter[tuple[str, str, str]] = Counter()
    out = []
    for d, path in zip(diagnostics, paths, strict=True):
        key = (path, d.code, re.sub(r"\bline \d+", "line", d.message))
        nth = seen[key]
        seen[key] += 1
        text = "\0".join((*key, str(nth))) if nth else "\0".join(key)
        out.append(hashlib.sha256(text.encode()).hexdigest())
    return out


def gitlab(diagnostics: Sequence[Diagnostic]) -> list[dict[str, object]]:
    """GitLab's code quality report (a JSON array of issues), paths relative to the project."""
    paths = [project_path(d.file) for d in diagnostics]
    return [{
        "description": f"{d.code}: {d.message}",
        "check_name": d.code,
        "fingerprint": fingerprint,
        "severity": "major" if d.severity == "error" else "minor",
        "location": {"path": path, "lines": {"begin": d.line, "end": d.end_line}},
    } for d, path, fingerprint in zip(diagnostics, paths, fingerprints(diagnostics, paths),
                                      strict=True)]


def help_uri(code: str) -> str | None:
    """Where a code is explained on the web: the `Codes` (else `Documentation`) URL of the
    package's metadata, with the heading of `spec/codes.md` as the fragment."""
    import re
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("qbcallbacks").get_all("Project-URL") or []
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return None
    named = dict(u.split(", ", 1) for u in urls if ", " in u)
    base = named.get("Codes") or named.get("Documentation")
    if not base:
        return None
    heading = f"{code}: {CODES.get(code, '')}".lower()
    return f"{base}#{re.sub(r'[^a-z0-9 _-]', '', heading).replace(' ', '-')}"


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
        uri = help_uri(code)
        if uri is not None:
            rule["helpUri"] = uri
        rules.append(rule)
    marks = fingerprints(diagnostics, [project_path(d.file) for d in diagnostics])
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
        "partialFingerprints": {"qbcallbacksFinding/v1": mark},
    } for d, mark in zip(diagnostics, marks, strict=True)]
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
