"""The reload policy: with `attach = submission` (the default, the original's) a job keeps the
universal rules in force when it was attached; with `attach = live` every live job takes the
new set at once."""

from __future__ import annotations

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.model.events import Event
from qbcallbacks.model.rules import Rule


def rule(trigger: str, position: int, file: str) -> Rule:
    return Rule(directory="site", file=file, trigger=parse_trigger(trigger),
                language="qube", line=position + 1, position=position)


def fired(matcher: Matcher, name: str, job: int) -> list[tuple[str, int]]:
    return [(f.callback, f.job) for f in
            matcher.observe(Event(name=name, type="job", job=job))]


OLD = rule("complete-job-self", 0, "old.qcb")
NEW = rule("complete-job-self", 0, "new.qcb")
KEPT = rule("complete-job-self && failed-job-self", 1, "kept.qcb")


def test_submission_jobs_keep_the_rules_they_were_attached_under() -> None:
    matcher = Matcher([OLD, KEPT])
    assert matcher.attach_policy == "submission"
    assert fired(matcher, "submit", 1) == []
    assert fired(matcher, "failed", 1) == []  # kept.qcb half satisfied on job 1
    matcher.replace_rules([NEW, KEPT])
    assert matcher.rules == (NEW, KEPT)
    # Job 1 was attached before the reload: old.qcb still fires for it, new.qcb does not,
    # and the kept rule's state survived.
    assert fired(matcher, "complete", 1) == [("old.qcb", 1), ("kept.qcb", 1)]
    # Job 2 is attached after it: the new set only.
    assert fired(matcher, "complete", 2) == [("new.qcb", 2)]


def test_a_retired_rule_goes_when_the_last_job_attached_under_it_goes() -> None:
    matcher = Matcher([OLD])
    fired(matcher, "submit", 1)
    matcher.replace_rules([NEW])
    assert fired(matcher, "complete", 1) == [("old.qcb", 1)]
    assert fired(matcher, "removed", 1) == []
    assert fired(matcher, "complete", 3) == [("new.qcb", 3)]
    assert fired(matcher, "complete", 3) == [("new.qcb", 3)]


def test_added_rules_reach_only_later_jobs_and_removed_ones_stay_on_earlier() -> None:
    matcher = Matcher([OLD])
    fired(matcher, "submit", 1)
    matcher.add_rules([rule("complete-job-self", 1, "added.qcb")])
    assert fired(matcher, "complete", 1) == [("old.qcb", 1)]
    assert fired(matcher, "complete", 2) == [("old.qcb", 2), ("added.qcb", 2)]
    matcher.remove_rules([OLD])
    assert fired(matcher, "complete", 2) == [("old.qcb", 2), ("added.qcb", 2)]
    assert fired(matcher, "complete", 4) == [("added.qcb", 4)]


def test_a_reload_with_no_live_job_simply_replaces() -> None:
    matcher = Matcher([OLD])
    matcher.replace_rules([NEW])
    assert fired(matcher, "complete", 1) == [("new.qcb", 1)]


def test_live_every_job_takes_the_new_rules_at_once() -> None:
    matcher = Matcher([OLD, KEPT], attach="live")
    fired(matcher, "failed", 1)
    matcher.replace_rules([NEW, KEPT])
    assert fired(matcher, "complete", 1) == [("new.qcb", 1), ("kept.qcb", 1)]
    assert fired(matcher, "complete", 2) == [("new.qcb", 2)]


def test_a_rule_only_added_by_a_reload_stays_off_older_jobs() -> None:
    matcher = Matcher([OLD])
    fired(matcher, "submit", 1)
    matcher.replace_rules([OLD, rule("complete-job-self", 1, "added.qcb")])
    assert fired(matcher, "complete", 1) == [("old.qcb", 1)]
    assert fired(matcher, "complete", 2) == [("old.qcb", 2), ("added.qcb", 2)]
