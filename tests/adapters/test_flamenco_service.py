"""Flamenco, end to end: a real MQTT broker, `qbcallbacks serve`, the adapter feeding it through
the line protocol, and a stand-in Manager receiving the actions the callbacks ask for."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from qbcallbacks.audit.backends import open_audit
from support.flamenco_manager import JOB, Manager
from support.mqtt import publish, wait_for

CALLBACKS = {
    "callbacks.conf": "finished.py = done-job-self\nfailing.py = failed-work-self-*\n",
    "finished.py": textwrap.dedent("""\
        import qb
        job = qb.jobinfo("-id", qb.jobid())[0]
        open("done-%d.txt" % job["id"], "w").write(job["name"])
    """),
    "failing.py": "import qb\nqb.kill(qb.jobid())\n",
}


def child(args, log):
    return subprocess.Popen([sys.executable, "-m", "qbcallbacks", *args], stdout=log,
                            stderr=subprocess.STDOUT)


def test_flamenco_through_the_service(broker, flamenco_manager, tmp_path) -> None:
    site = tmp_path / "callbacks"
    site.mkdir()
    for name, text in CALLBACKS.items():
        (site / name).write_text(text)
    sock, work = tmp_path / "svc.sock", tmp_path / "run"
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("serve", "adapt")}  # noqa: SIM115
    serve = child(["serve", str(site), "--listen", f"unix:{sock}", "--audit",
                   str(tmp_path / "audit.db"), "--workdir", str(work)], logs["serve"])
    adapt = None
    try:
        wait_for(lambda: sock.exists() or serve.poll() is not None, "the service")
        adapt = child(["adapt", "flamenco", "--mqtt", f"mqtt://127.0.0.1:{broker}",
                       "--service", f"unix:{sock}", "--manager", flamenco_manager,
                       "--state", str(tmp_path / "state.db")], logs["adapt"])
        wait_for(lambda: "subscribed" in (tmp_path / "adapt.log").read_text(), "the adapter")
        job = {"id": JOB, "name": "shot", "updated": "1", "type": "t", "priority": 50,
               "refresh_tasks": False}
        publish(broker, "flamenco/jobs", {**job, "status": "active"})
        publish(broker, f"flamenco/jobs/{JOB}", {
            "id": "t-1", "job_id": JOB, "name": "render-1", "updated": "2", "status": "failed",
            "previous_status": "active", "activity": ""})
        publish(broker, "flamenco/jobs", {**job, "updated": "3", "status": "completed",
                                          "previous_status": "active"})
        # finished.py asked jobinfo through the service and the adapter; failing.py asked
        # for a kill, which reached the Manager as a status change.
        wait_for(lambda: (work / "done-1.txt").exists(), "finished.py's file")
        assert (work / "done-1.txt").read_text() == "shot"
        wait_for(lambda: any(m == "POST" for m, _, _ in Manager.calls), "the kill")
        assert ("POST", f"/api/v3/jobs/{JOB}/setstatus",
                {"status": "cancel-requested", "reason": "asked by a qbcallbacks callback"}
                ) in Manager.calls
    finally:
        for proc in (adapt, serve):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        for log in logs.values():
            log.close()
    assert adapt.returncode == 0 and serve.returncode == 0
    reader = open_audit(tmp_path / "audit.db", readonly=True)
    rows = reader.query()
    reader.close()
    assert sorted((r.callback, r.status) for r in rows) == [
        ("failing.py", "ok"), ("finished.py", "ok")]
