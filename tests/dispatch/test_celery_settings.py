"""Choosing the Celery executor: settings, qb.conf keys and `serve` options refuse what
cannot work with a clear error, before anything starts (no broker needed here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from qbcallbacks.config.qbconf import QbConfError, parse_qbconf
from qbcallbacks.dispatch.dispatcher import DispatcherSettings
from qbcallbacks.dispatch.remote.wire import (
    RemoteRun,
    result_from_wire,
    run_message,
    script_hash,
)
from qbcallbacks.model.events import Event
from qbcallbacks.runtimes.api import Invocation
from support.paths import ROOT


def test_the_celery_executor_needs_a_broker_and_local_stays_the_default() -> None:
    assert DispatcherSettings().executor == "local"
    with pytest.raises(ValidationError, match="needs a broker URL"):
        DispatcherSettings(executor="celery")
    with pytest.raises(ValidationError):
        DispatcherSettings(executor="ray", broker="amqp://x//")  # type: ignore[arg-type]
    s = DispatcherSettings(executor="celery", broker="amqp://h//")
    assert (s.executor, s.broker) == ("celery", "amqp://h//")


def test_qbconf_names_where_callbacks_run() -> None:
    conf = parse_qbconf("supervisor_callback_executor = Celery\n"
                        "supervisor_callback_broker = amqp://farm:5672//\n")
    assert (conf.callback_executor, conf.callback_broker) == ("celery", "amqp://farm:5672//")
    assert parse_qbconf("").callback_executor is None
    with pytest.raises(QbConfError, match="supervisor_callback_executor is 'dask'"):
        assert parse_qbconf("supervisor_callback_executor = dask\n").callback_executor


def serve(tmp_path: Path, *args: str, conf: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "cb").mkdir(exist_ok=True)
    (tmp_path / "qb.conf").write_text(conf)
    return subprocess.run([sys.executable, "-m", "qbcallbacks", "serve", str(tmp_path / "cb"),
                           "--listen", f"unix:{tmp_path / 's.sock'}", "--workdir",
                           str(tmp_path / "run"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "QB_CONF": str(tmp_path / "qb.conf")})


def test_serve_refuses_the_celery_executor_without_a_broker(tmp_path: Path) -> None:
    done = serve(tmp_path, "--executor", "celery")
    assert done.returncode == 2
    assert "--executor celery needs --broker URL" in done.stderr
    assert not (tmp_path / "s.sock").exists()
    bad = serve(tmp_path, "--executor", "dask")
    assert bad.returncode == 2 and "'dask' is not one of" in bad.stderr
    conf = serve(tmp_path, conf="supervisor_callback_executor = celery\n")
    assert conf.returncode == 2 and "needs --broker URL" in conf.stderr
    wrong = serve(tmp_path, conf="supervisor_callback_executor = dask\n")
    assert wrong.returncode == 2 and "supervisor_callback_executor is 'dask'" in wrong.stderr


def test_a_run_travels_as_plain_json_and_comes_back_whole(tmp_path: Path) -> None:
    script = tmp_path / "a.py"
    script.write_text("print(1)\n")
    inv = Invocation(callback="a.py", path=script, job_id=4, timeout=2.5,
                     event=Event(name="complete", type="work", job=4, extra="7"))
    message = run_message(9, 4, "py", inv, script_hash(script), "q")
    spec = RemoteRun.model_validate(message)
    assert spec.to_invocation() == inv and spec.firing == 9
    assert spec.script_hash == script_hash(script) != script_hash(tmp_path / "gone.py")
    assert script_hash(tmp_path / "gone.py") is None and script_hash(None) is None
    assert result_from_wire({"status": "ok", "output": "x"}).output == "x"
    broken = result_from_wire({"status": "exploded"})
    assert broken.status == "crashed" and "unreadable outcome" in (broken.error or "")


def test_malformed_requests_from_the_broker_get_an_error_and_change_nothing() -> None:
    from qbcallbacks.dispatch.remote.executor import CeleryExecutor

    ex = CeleryExecutor("amqp://nowhere//")  # not started: requests about no firing
    assert "without a firing id" in ex.answer({"op": "done", "firing": "1"})["error"]
    assert "without a firing id" in ex.answer({"op": "started", "firing": True})["error"]
    assert ex.answer({"op": "started", "firing": 5}) == {"run": False}
    assert ex.answer({"op": "done", "firing": 5, "result": "junk"}) == {"recorded": False}
    assert "unknown request" in ex.answer({"op": "rm", "firing": 5})["error"]
    for method in ("__class__", "_lock", "submit"):
        reply = ex.answer({"op": "call", "method": method, "args": []})
        assert reply == {"error": f"no supervisor method {method!r}", "host": True}
    assert ex.waiting == 0


def test_with_the_broker_out_of_reach_runs_wait_and_health_says_why(tmp_path: Path) -> None:
    pytest.importorskip("celery", reason="Celery is not installed (the `celery` extra)")
    from qbcallbacks.dispatch.dispatcher import Dispatcher
    from qbcallbacks.dispatch.remote.executor import CeleryExecutor
    from qbcallbacks.reference.memory import MemorySupervisor
    from support.dispatch_fakes import write_dir
    from support.rabbitmq import free_port, wait_for

    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"  # nothing listens there
    root = write_dir(tmp_path / "cb", {"a.qcb": "complete-job-self", "b.qcb": "done-job-self"})
    ex = CeleryExecutor(url)
    d = Dispatcher([str(root)], MemorySupervisor(), audit=tmp_path / "audit.db", executor=ex,
                   settings=DispatcherSettings(executor="celery", broker=url))
    assert not d.health.ok and "broker is out of reach" in (d.health.problem or "")
    d.emit(Event(name="complete", type="job", job=1))  # still taken: it waits
    wait_for(lambda: ex.waiting == 2 and len(ex._unsent) == 1, "the job's first run to wait")
    assert not d.wait_idle(0.3)
    assert [r.status for r in d.audit.query()] == ["pending", "pending"]
    assert d.close(drain=False) is False
    assert [r.status for r in d.audit.query()] == ["cancelled", "cancelled"]


def test_the_worker_app_acks_late_prefetches_one_and_recycles_as_told() -> None:
    pytest.importorskip("celery", reason="Celery is not installed (the `celery` extra)")
    probe = ("import json, qbcallbacks.celery as c; k = c.app.conf; print(json.dumps([k[n] for n"
             " in ('broker_url', 'task_default_queue', 'task_acks_late', "
             "'task_reject_on_worker_lost', 'worker_prefetch_multiplier', "
             "'worker_max_tasks_per_child', 'worker_max_memory_per_child')]))")
    env = {**os.environ, "QBCALLBACKS_BROKER": "amqp://farm//", "QBCALLBACKS_QUEUE": "cb",
           "QBCALLBACKS_MAX_TASKS_PER_CHILD": "50", "QBCALLBACKS_MAX_MEMORY_PER_CHILD": "200000"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert json.loads(out) == ["amqp://farm//", "cb", True, True, 1, 50, 200000]
    env.pop("QBCALLBACKS_MAX_MEMORY_PER_CHILD")
    env.pop("QBCALLBACKS_MAX_TASKS_PER_CHILD")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert json.loads(out)[-2:] == [1000, None]
    env["QBCALLBACKS_MAX_TASKS_PER_CHILD"] = "lots"
    bad = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode != 0
    assert "QBCALLBACKS_MAX_TASKS_PER_CHILD must be a positive whole number, not 'lots'" \
        in bad.stderr
