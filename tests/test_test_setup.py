"""The test run's own set-up holds under parallel workers: the Hypothesis example database
takes saves from several processes at once and loses none, and test servers' ports come from
each worker's own slice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

from support import ports
from support.paths import ROOT

SAVE = """
import sys
from hypothesis.database import DirectoryBasedExampleDatabase
db = DirectoryBasedExampleDatabase(sys.argv[1])
for i in range(150):
    db.save(b"one-test", b"%s-%d" % (sys.argv[2].encode(), i))
    list(db.fetch(b"one-test"))
"""


def test_the_example_database_keeps_every_save_of_parallel_workers(tmp_path: Path) -> None:
    used = settings.default.database
    assert isinstance(used, DirectoryBasedExampleDatabase)
    assert Path(used.path) == ROOT / ".hypothesis" / "examples"
    workers = [subprocess.Popen([sys.executable, "-c", SAVE, str(tmp_path), f"gw{n}"])
               for n in range(3)]
    assert [w.wait(120) for w in workers] == [0, 0, 0]
    kept = set(DirectoryBasedExampleDatabase(str(tmp_path)).fetch(b"one-test"))
    assert kept == {b"gw%d-%d" % (n, i) for n in range(3) for i in range(150)}


def test_workers_draw_ports_from_slices_of_their_own(monkeypatch) -> None:
    slices = []
    for worker in ("gw0", "gw1", "gw2", "gw3", ""):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        slices.append(set(ports.worker_slice()))
        port = ports.free_port()
        assert port in slices[-1] and port < ports.ephemeral_start()
    assert all(not a & b for i, a in enumerate(slices) for b in slices[i + 1:])
