"""Flamenco, end to end: a real MQTT broker, `qbcallbacks serve`, the adapter feeding it
through the line protocol, and a stand-in Manager running the Manager's state machine that
receives the actions the callbacks ask for: a paused job is resumed by a callback (the delayed
start of the original), and `fail` fails a job."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from qbcallbacks.audit.backends import open_audit
from support.flamenco_manager import StandInManager
from support.mqtt import wait_for

CALLBACKS = {
    "callbacks.conf": ("finished.py = done-job-self\nfailing.py = failed-work-self-*\n"
                       "resume.py = blocked-job-self\n"),
    "finished.py": textwrap.dedent("""\
        import qb
        job = qb.jobinfo("-id", qb.jobid())[0]
        open("done-%d.txt" % job["id"], "w").write(job["name"])
    """),
    "failing.py": "import qb\nqb.fail(qb.jobid())\n",
    "resume.py": "import qb\nassert qb.unblock(qb.jobid())\n",
}


def child(args, log):
    return subprocess.Popen([sys.executable, "-m", "qbcallbacks", *args], stdout=log,
                            stderr=subprocess.STDOUT)


def test_flamenco_through_the_service(broker, tmp_path) -> None:
    manager = StandInManager(broker)
    site = tmp_path / "callbacks"
    site.mkdir()
    for name, text in CALLBACKS.items():
        (site / name).write_text(text)
    sock, work = tmp_path / "svc.sock", tmp_path / "run"
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in ("serve", "adapt")}  # noqa: SIM115
    serve = child(["serve", str(site), "--listen", f"unix:{sock}", "--audit",
                   str(tmp_path / "audit.db"), "--workdir", str(work)], logs["serve"])
    adapt = None
    m = manager.machine
    try:
        wait_for(lambda: sock.exists() or serve.poll() is not None, "the service")
        adapt = child(["adapt", "flamenco", "--mqtt", f"mqtt://127.0.0.1:{broker}",
                       "--service", f"unix:{sock}", "--manager", manager.url,
                       "--state", str(tmp_path / "state.db")], logs["adapt"])
        wait_for(lambda: "subscribed" in (tmp_path / "adapt.log").read_text(), "the adapter")
        held = m.submit("held", tasks=2)
        m.job_status_change(held.uuid, "pause-requested")  # no task runs: paused at once
        # resume.py asked for `unblock`: the adapter asked the Manager for `requeueing`.
        wait_for(lambda: m.jobs[held.uuid].status == "queued", "the resumed job")
        m.run(held.uuid)
        wait_for(lambda: (work / "done-1.txt").exists(), "finished.py's file")
        assert (work / "done-1.txt").read_text() == "held"
        big = m.submit("big", tasks=20)
        m.task_status_change(big.tasks[0], "active")
        m.task_status_change(big.tasks[0], "failed")  # 5%: the Manager keeps the job going
        wait_for(lambda: m.jobs[big.uuid].status == "failed", "the failed job")
        wait_for(lambda: (work / "done-2.txt").exists(), "finished.py's second file")
    finally:
        for proc in (adapt, serve):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        for log in logs.values():
            log.close()
        manager.close()
    assert adapt.returncode == 0 and serve.returncode == 0
    asked = [(p.rsplit("/", 2)[-2], b["status"]) for v, p, b in manager.calls if v == "POST"]
    assert asked == [(held.uuid, "requeueing"), (big.uuid, "failed")]
    reader = open_audit(tmp_path / "audit.db", readonly=True)
    rows = reader.query()
    reader.close()
    assert sorted((r.callback, r.event.format(), r.status) for r in rows) == [
        ("failing.py", "failed-work-2-render-0", "ok"),
        ("finished.py", "complete-job-1", "ok"), ("finished.py", "failed-job-2", "ok"),
        ("resume.py", "blocked-job-1", "ok")]
