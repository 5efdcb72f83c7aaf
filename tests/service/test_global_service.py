"""Global callbacks through `qbcallbacks serve` and `qbcallbacks global`: added on a running
service (its `global` method) or on a trail before the service starts, fired once per instant
whether no job or three are live, kept across a restart without firing an instant twice, and
refused (with the reason, kept in the trail) where the site does not allow them.

The services run on the real clock, so each global callback names an instant already past:
the catch-up rule fires it once, at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qbcallbacks.matching.clock import to_qube
from support.service import LineClient, eventually, served

LOG = ("import qb\nwith open('global.log', 'a') as fh:\n"
       "    fh.write('%s %d\\n' % (NAME, qb.jobid()))\n")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qbcallbacks", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def code(name: str) -> str:
    return f"NAME = {name!r}\n" + LOG


def fired(workdir: Path) -> list[str]:
    log = workdir / "global.log"
    return log.read_text().splitlines() if log.exists() else []


def past() -> str:
    return str(int(to_qube(time.time())) - 100)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Callback directories with no rules, and a qb.conf that allows global callbacks."""
    callbacks = tmp_path / "callbacks"
    callbacks.mkdir()
    (callbacks / "callbacks.conf").write_text("")
    conf = tmp_path / "qb.conf"
    conf.write_text("supervisor_global_callbacks = true\n")
    monkeypatch.setenv("QB_CONF", str(conf))
    return callbacks


def test_through_the_service_once_per_instant_with_no_job_or_three_and_across_a_restart(
        tmp_path: Path, site: Path) -> None:
    with served(tmp_path, site) as svc:
        address = f"unix:{svc.sock}"
        added = cli("global", "add", f"globaltime-{past()}", "--language", "python",
                    "--code", code("alone"), "--service", address)
        assert added.returncode == 0, added.stderr
        first = int(added.stdout)
        eventually(lambda: fired(svc.workdir) == ["alone 0"])
        with LineClient(svc.sock) as client:
            for seq, job in enumerate((1, 2, 3), start=1):
                assert client.event(seq, job, name="submit")["result"] == {"ack": seq}
        again = cli("global", "add", f"globaltime-{past()}", "--language", "python",
                    "--code", code("three"), "--service", address)
        assert again.returncode == 0, again.stderr
        eventually(lambda: fired(svc.workdir) == ["alone 0", "three 0"])
        listed = cli("global", "list", "--format", "json", "--service", address)
        assert [g["id"] for g in json.loads(listed.stdout)] == [first, int(again.stdout)]
        assert svc.stop() == 0
    with served(tmp_path, site) as svc:
        late = cli("global", "add", f"globaltime-{past()}", "--language", "python",
                   "--code", code("late"), "--service", f"unix:{svc.sock}")
        assert late.returncode == 0, late.stderr
        # The two earlier instants come before this one: once it ran, they were passed over.
        eventually(lambda: fired(svc.workdir)[-1:] == ["late 0"])
        assert fired(svc.workdir) == ["alone 0", "three 0", "late 0"]
        history = cli("history", "--audit", str(tmp_path / "audit.db"), "--session", "all",
                      "--format", "json")
        names = sorted(f["callback"] for f in json.loads(history.stdout))
        assert names == ["global:1", "global:2", "global:3"]
        assert svc.stop() == 0


def test_added_to_a_trail_before_the_service_starts(tmp_path: Path, site: Path) -> None:
    audit = str(tmp_path / "audit.db")
    added = cli("global", "add", f"globalrepeat-{past()}-3600", "--language", "python",
                "--code", code("nightly"), "--audit", audit)
    assert (added.returncode, added.stdout.strip()) == (0, "1"), added.stderr
    with served(tmp_path, site) as svc:
        eventually(lambda: fired(svc.workdir) == ["nightly 0"])
        assert svc.stop() == 0
    removed = cli("global", "remove", "1", "--audit", audit)
    assert removed.returncode == 0, removed.stderr
    assert cli("global", "list", "--audit", audit, "--format", "json").stdout.strip() == "[]"
    gone = cli("global", "remove", "1", "--audit", audit)
    assert gone.returncode == 1 and "no global callback 1 is in force" in gone.stderr


def test_refused_where_the_site_does_not_allow_them(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    callbacks = tmp_path / "callbacks"
    callbacks.mkdir()
    (callbacks / "callbacks.conf").write_text("")
    monkeypatch.delenv("QB_CONF", raising=False)
    monkeypatch.setenv("QBDIR", str(tmp_path))  # no /etc/qb.conf is read into the test
    with served(tmp_path, callbacks) as svc:
        refused = cli("global", "add", "global", "--language", "python", "--code", "pass",
                      "--service", f"unix:{svc.sock}")
        assert refused.returncode == 1
        assert "global callbacks are off on this site" in refused.stderr
        rows = cli("history", "--audit", str(tmp_path / "audit.db"), "--globals",
                   "--format", "json")
        [row] = json.loads(rows.stdout)
        assert row["state"] == "refused" and "supervisor_global_callbacks" in row["reason"]
        assert svc.stop() == 0
    if os.path.exists("/etc/qb.conf"):
        pytest.skip("this machine's /etc/qb.conf decides for a trail")
    offline = cli("global", "add", "global", "--language", "python", "--code", "pass",
                  "--audit", str(tmp_path / "audit.db"))
    assert offline.returncode == 1 and "off on this site" in offline.stderr
