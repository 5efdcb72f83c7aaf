from __future__ import annotations

from click.testing import CliRunner

from qbcallbacks.audit.store import AuditStore
from qbcallbacks.cli import cli
from support.paths import EXAMPLES


def test_simulate_on_a_trail_another_process_writes_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    audit = tmp_path / "audit.db"
    holder = AuditStore(audit)
    try:
        result = CliRunner().invoke(cli, ["simulate", str(EXAMPLES), "--audit", str(audit)])
    finally:
        holder.close()
    assert result.exit_code == 1
    assert "one writer at a time" in result.output and "process" in result.output
