"""Differential tests of the loader's column passes: the rules and diagnostics of a directory
equal what a plain line-by-line loader builds, the duplicate warnings equal those found from
the whole document, and the near-miss pass equals placing every line's warnings one by one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks.config import load
from qbcallbacks.errors import Diagnostic
from qbcallbacks.lang import parse_config
from qbcallbacks.lang._fast_rows import CompoundRow, EventRow, row_model
from qbcallbacks.lang.config import RuleRow, scan_config
from qbcallbacks.lang.near_miss import near_miss_rows, piece_warnings
from qbcallbacks.lang.outline import outline_config_line
from qbcallbacks.model.languages import language_of
from qbcallbacks.model.limits import Limits
from qbcallbacks.model.rules import Rule, make_rule

#: Scripts every generated directory holds: good ones, one that is a directory (never a
#: usable script) and one that is not there at all (`gone.py`).
_SCRIPTS = ("a.py", "b.py", "c.pl")

_LINE = st.one_of(
    st.builds("{} = done-job-x{}".format, st.sampled_from([*_SCRIPTS, "d.py", "gone.py"]),
              st.integers(0, 40)),
    st.sampled_from([
        "a.py = done-job-self", "b.py = done-job-self", "a.py = compelte-job-self",
        "a.py = done-job-slef", "c.pl = done-job-parnet  # a slip", "  a.py\t=  done-job-self",
        "a.py = done-job-self && failed-job-self", "a.py = done-job-self || submit-job-x1",
        "b.py = (done-job-self || failed-job-self) && submit-job-x1", "a.py = globalstart",
        "# a comment", "", "   ", "a.py = done-job-", "a.py done-job-self", "= done-job-self",
        "a.txt = done-job-self", "../a.py = done-job-self", "a.py = done-job-self\r",
        "a.py = done-job-x1 # trailing", "A.PY = done-job-self", "a.py = done-job-séance",
        "a.py = done-job-" + "x" * 90, "a.py = " + "(" * 30 + "done-job-self" + ")" * 30,
    ]))
_LIMITS = st.sampled_from([Limits(), Limits(max_diagnostics=3), Limits(max_line_length=80),
                           Limits(max_trigger_depth=8, max_diagnostics=5)])


def _directory(tmp: Path, lines: list[str]) -> Path:
    directory = tmp / f"d{len(os.listdir(tmp))}"
    directory.mkdir()
    for name in _SCRIPTS:
        (directory / name).write_text("pass\n" if name.endswith(".py") else "1;\n")
    (directory / "d.py").mkdir()
    (directory / "callbacks.conf").write_text("".join(f"{line}\n" for line in lines))
    return directory


def _line_by_line(directory: str, root: Path, rows: list[RuleRow], conf: str,
                  diags: list[Diagnostic], position: int, check_scripts: bool,
                  runtimes: load.Validators, limits: Limits) -> list[Rule]:
    """The rules as a loader taking one row at a time builds them: the reference."""
    rules: list[Rule] = []
    real_root = os.path.realpath(root)
    verdicts: dict[str, tuple[str, str] | tuple[()] | None] = {}
    room = limits.max_diagnostics - sum(d.file == conf for d in diags)
    dropped = 0
    for row in rows:
        name = row.file
        if name not in verdicts:
            verdicts[name] = load._script_verdict(root, real_root, name, limits)
            if verdicts[name] is None and check_scripts:
                found = load._validate(runtimes[Path(name).suffix.lower()], root / name)
                found += load.file_problems(root / name, conf, load._site(row))
                diags.extend(found)
                if any(d.severity == "error" for d in found):
                    verdicts[name] = ()
        verdict = verdicts[name]
        if verdict is not None:
            if verdict and room > 0:
                diags.append(load._on_line(verdict, row, conf))
                room -= 1
            elif verdict:
                dropped += 1
            continue
        trigger = row.trigger
        model = row_model(trigger) if type(trigger) in (EventRow, CompoundRow) else trigger
        rules.append(make_rule(directory, name, language_of(name), model, row.line,
                               row.file_column, row.trigger_column, position + len(rules)))
    if dropped:
        diags.append(load.summary_diagnostic(conf, dropped, dropped, limits.max_diagnostics))
    rows.clear()
    return rules


@given(st.lists(_LINE, max_size=60), _LIMITS, st.booleans())
def test_rules_and_diagnostics_equal_a_line_by_line_load(
        tmp_path_factory: pytest.TempPathFactory, lines: list[str], limits: Limits,
        check_scripts: bool) -> None:
    directory = str(_directory(tmp_path_factory.mktemp("cols"), lines))
    got = load.load_directory(directory, position=7, limits=limits, check_scripts=check_scripts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load, "_load_rules", _line_by_line)
        want = load.load_directory(directory, position=7, limits=limits,
                                   check_scripts=check_scripts)
    assert got.rules == want.rules
    assert got.diagnostics == want.diagnostics


def test_rules_past_a_batch_keep_their_order_and_positions(tmp_path: Path) -> None:
    lines = [f"{'a.py' if i % 3 else 'b.py'} = done-job-x{i % 5000}" for i in range(20_000)]
    directory = str(_directory(tmp_path, [*lines, "gone.py = done-job-self", *lines[:10]]))
    got = load.load_directory(directory, position=3, limits=Limits(max_diagnostics=100_000))
    assert [(r.line, r.position) for r in got.rules] == [
        (i + 1, i + 3) for i in range(20_000)] + [(20_002 + i, 20_003 + i) for i in range(10)]
    assert [r.trigger.format() for r in got.rules[:20_000]] == [ln[7:] for ln in lines]
    assert got.rules[0].trigger is got.rules[5000].trigger  # equal rows share one model
    assert ("QCB112", 20_001) in {(d.code, d.line) for d in got.diagnostics}


@given(st.lists(_LINE, max_size=60))
def test_duplicates_are_those_of_the_whole_document(lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    parsed = parse_config(text)
    first: dict[tuple[str, str], int] = {}
    want = []
    for site in parsed.rules:
        key = (site.rule.file, site.rule.trigger.format())
        if key in first:
            want.append((site.line, site.file_column, f"duplicate of line {first[key]}"))
        else:
            first[key] = site.line
    _, found = scan_config(text)
    assert [(d.line, d.column, d.message.split(":")[0]) for d in found
            if d.code == "QCB202"] == want


@given(st.lists(_LINE, max_size=60))
def test_near_misses_equal_those_placed_line_by_line(lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    rows, _ = scan_config(text, "c.conf")
    want = [(r.line, code, p.start + 1, message) for r in rows
            for code, message, p in piece_warnings(outline_config_line(r.line,
                                                                       r.source_line).pieces)]
    got = near_miss_rows("c.conf", rows)
    assert [(d.line, d.code, d.column, d.message) for d in got] == want
