"""The commands that take `--audit` run on a PostgreSQL trail as on a file."""

from __future__ import annotations

import json

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.cli import main
from support.paths import EXAMPLES


def test_simulate_then_history_on_postgresql(postgres_url, tmp_path, capsys) -> None:
    url = f"{postgres_url}&trail=sim"
    code = main(["simulate", str(EXAMPLES), "--audit", url, "--workdir",
                 str(tmp_path / "run"), "--format", "json", "--no-progress", "--groups", "1",
                 "--frames", "2", "--allow-failures"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    store = open_audit(url, readonly=True)
    rows = store.query()
    store.close()
    assert len(rows) == summary["firings"] == summary["predicted"] > 0
    assert all(r.status != "pending" for r in rows)
    assert main(["history", "--audit", url, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(rows)
