"""The event-stream vectors of spec/vectors/events-*.json, through the matcher and the reference.

Each case gives callbacks.conf texts, a replay stream and the firings `replay --format json`
prints; the CLI itself runs them in test_replay_cli.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from qbcallbacks.cli.replay import dry_run, firing_json
from qbcallbacks.lang import parse_config
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.languages import language_of
from qbcallbacks.model.rules import Rule
from qbcallbacks.stream import BadLine, ReplayStep, read_events
from support.reference_matcher import ReferenceMatcher
from support.vectors import event_cases

CASES = event_cases()


def rules_of(case: dict[str, Any]) -> list[Rule]:
    rules: list[Rule] = []
    for entry in case["directories"]:
        parsed = parse_config(entry["callbacks.conf"], f"{entry['directory']}/callbacks.conf")
        assert parsed.ok, parsed.diagnostics
        for site in parsed.rules:
            rules.append(Rule(directory=entry["directory"], file=site.rule.file,
                              language=language_of(site.rule.file),  # type: ignore[arg-type]
                              trigger=site.rule.trigger, line=site.line, position=len(rules)))
    return rules


def lines_of(case: dict[str, Any]) -> list[str]:
    return [e if isinstance(e, str) else json.dumps(e) for e in case["events"]]


def test_there_are_vectors() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_vector_with_matcher(case: dict[str, Any]) -> None:
    rules = rules_of(case)
    shown = {r.position: r.directory for r in rules}
    got, bad = [], []
    for item in dry_run(read_events(lines_of(case)), Matcher(rules)):
        if isinstance(item, BadLine):
            bad.append(item.seq)
        else:
            got.append(firing_json(*item, shown))
    assert got == case["firings"]
    assert bad == case["bad_lines"]


@pytest.mark.parametrize("case", CASES)
def test_vector_with_reference(case: dict[str, Any]) -> None:
    reference = ReferenceMatcher(rules_of(case))
    got = []
    for step in read_events(lines_of(case)):
        if isinstance(step, ReplayStep):
            for f in reference.observe(step.event, step.job):
                got.append({"seq": step.seq, "job": f.job, "callback": f.callback,
                            "directory": f.directory, "trigger": f.trigger})
    assert got == case["firings"]
