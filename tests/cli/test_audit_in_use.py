"""A run command on an audit trail another live writer holds: one line, exit 2."""

from __future__ import annotations

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.cli import main
from support.paths import EXAMPLES


def test_simulate_on_a_trail_another_process_writes_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    audit = tmp_path / "audit.db"
    holder = open_audit(audit)
    try:
        code = main(["simulate", str(EXAMPLES), "--audit", str(audit), "--no-progress"])
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 2  # an environment error, not a finding
    assert "one writer at a time" in err and "process" in err
    assert err.count("\n") == 1
