"""Two callback services, one per supervisor, share one PostgreSQL database: each holds its own
trail's lease, a third on a taken trail is refused, and a re-sent `seq` fires nothing twice."""

from __future__ import annotations

import signal
import subprocess
import sys

from qbcallbacks.adapters.client import ServiceClient
from qbcallbacks.audit.backends import open_audit
from qbcallbacks.reference.memory import MemorySupervisor
from support.dispatch_fakes import write_dir
from support.mqtt import wait_for


def serve(site, sock, url, work, log):
    return subprocess.Popen([sys.executable, "-m", "qbcallbacks", "serve", str(site), "--listen",
                             f"unix:{sock}", "--audit", url, "--workdir", str(work)],
                            stdout=log, stderr=subprocess.STDOUT)


def test_two_services_share_one_database(postgres_url, tmp_path) -> None:
    site = tmp_path / "cb"
    site.mkdir()
    (site / "a.py").write_text("pass\n")  # asks the supervisor nothing: none stays connected
    write_dir(site, {"a.py": "complete-job-self"})
    urls = {name: f"{postgres_url}&trail={name}" for name in ("farm_a", "farm_b")}
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in urls}  # noqa: SIM115
    procs = {name: serve(site, tmp_path / f"{name}.sock", url, tmp_path / name, logs[name])
             for name, url in urls.items()}
    try:
        for name, proc in procs.items():
            wait_for(lambda n=name, p=proc: (tmp_path / f"{n}.sock").exists()
                     or p.poll() is not None, f"service {name}")
            assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
        taken = subprocess.run([sys.executable, "-m", "qbcallbacks", "serve", str(site),
                                "--listen", f"unix:{tmp_path / 'third.sock'}", "--audit",
                                urls["farm_a"], "--workdir", str(tmp_path / "third")],
                               capture_output=True, text=True, timeout=60)
        assert taken.returncode == 2 and "being written by" in taken.stderr
        for name, jobs in (("farm_a", (1, 2, 3)), ("farm_b", (7,))):
            client = ServiceClient(f"unix:{tmp_path / f'{name}.sock'}", MemorySupervisor())
            for seq, job in enumerate(jobs, 1):
                line = {"seq": seq, "type": "job", "event": "complete", "job": {"id": job}}
                assert client.event(line) == {"ack": seq}
            assert client.event(line)["duplicate"] is True  # re-sent: not journaled again
            client.close()
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        for log in logs.values():
            log.close()
    assert [p.returncode for p in procs.values()] == [0, 0]
    for name, jobs in (("farm_a", [1, 2, 3]), ("farm_b", [7])):
        reader = open_audit(urls[name], readonly=True)
        rows = reader.query()
        reader.close()
        assert sorted(r.job for r in rows) == jobs and {r.status for r in rows} == {"ok"}
