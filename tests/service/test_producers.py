"""Exactly-once acceptance through the real `qbcallbacks serve`: per producer and epoch, by
seq and content, across a locked trail, a stray seq, a new epoch and a kill -9."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from qbcallbacks.audit.backends import open_audit
from support.service import LineClient, callback_dir, eventually, served, start

RETRY = {-32001, -32002, -32003}


def _event(seq: int, job: int, name: str = "submitted") -> dict[str, Any]:
    return {"seq": seq, "type": "job", "event": name, "job": {"id": job, "name": f"j{job}"}}


def _jobs(db: Path) -> Counter[int]:
    """How often the trail recorded each job's event."""
    audit = open_audit(db, readonly=True)
    try:
        return Counter(e.event.job for e in audit.events())
    finally:
        audit.close()


class Pipeliner:
    """A supervisor that pipelines events at a steady rate and, as the spec says, re-sends
    from a refused seq (answers -32004 are the later ones the service holds back)."""

    def __init__(self, sock: Path, count: int, rate: float) -> None:
        self.c = LineClient(sock, producer="pipe", epoch=1)
        self.count, self.gap = count, 1.0 / rate
        self.acked: set[int] = set()
        self.refused = Counter[int]()
        self.cursor = 1
        self._sent: dict[int, int] = {}
        self._lock = threading.Lock()
        self.done = threading.Event()

    def run(self, limit: float = 120.0) -> None:
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        end = time.monotonic() + limit
        key = 100
        while not self.done.is_set():
            assert time.monotonic() < end, f"not every event was acked: {self.cursor}"
            with self._lock:
                seq = self.cursor
                if seq <= self.count:
                    self.cursor += 1
            if seq > self.count:
                self.done.wait(0.05)
                continue
            key += 1
            with self._lock:
                self._sent[key] = seq
            self.c.send({"jsonrpc": "2.0", "id": key, "method": "event",
                         "params": _event(seq, seq)})
            time.sleep(self.gap)  # the load's pace, not a wait for anything

    def _read(self) -> None:
        for line in self.c.rfile:
            msg = json.loads(line)
            with self._lock:
                seq = self._sent.pop(msg.get("id"), None)
                if seq is None:
                    continue
                if "result" in msg:
                    self.acked.add(seq)
                elif msg["error"]["code"] in RETRY:
                    self.refused[msg["error"]["code"]] += 1
                    self.cursor = min(self.cursor, seq)  # re-send from the refused one
                else:
                    assert msg["error"]["code"] == -32004, msg
                if len(self.acked) == self.count:
                    self.done.set()
                    return


def test_a_locked_trail_refuses_and_the_re_sends_record_every_event_once(
        tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    with served(tmp_path, callback_dir(tmp_path, asking=False)) as s:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys, time\n"
             "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "db.execute('BEGIN IMMEDIATE')\nprint('held', flush=True)\n"
             "time.sleep(8)\ndb.execute('COMMIT')\n", str(db)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            sup = Pipeliner(s.sock, count=2000, rate=200)
            sup.run()
            assert holder.wait(60) == 0
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
            assert holder.stdout is not None
            holder.stdout.close()
        assert sum(sup.refused.values()) > 0  # the lock did refuse events meanwhile
        assert sup.c.drain()["result"] == {"drained": True}
        sup.c.close()
        assert s.proc.wait(60) == 0
    recorded = _jobs(db)
    assert sorted(recorded) == list(range(1, 2001))
    assert set(recorded.values()) == {1}  # every event exactly once


def _post(url: str, body: object) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_producers_epochs_and_content_decide_what_is_a_duplicate(tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    port = _port()
    web = f"http://127.0.0.1:{port}/events?producer=web&epoch=1"
    huge = 9223372036854775807
    s = start(tmp_path, callbacks, "--http", f"127.0.0.1:{port}")
    try:
        a = LineClient(s.sock, producer="farm", epoch=1)
        assert a.hello["result"]["last_seq"] == 0
        assert a.request("event", _event(1, 1))["result"] == {"ack": 1}
        # A stray huge seq from another producer silences nothing of this one.
        assert _post(web, [_event(huge, 90)]) == (200, {"acks": [{"ack": huge}]})
        assert a.request("event", _event(2, 2))["result"] == {"ack": 2}
        # The same seq with the same content is a duplicate; with other content, an error.
        assert a.request("event", _event(2, 2))["result"] == {"ack": 2, "duplicate": True}
        other = a.request("event", _event(2, 3))["error"]
        assert other["code"] == -32005 and "other content" in other["message"]
        a.close()
        # A supervisor that starts its counter over takes a new epoch, and loses nothing.
        eventually(lambda: admin_health(s.sock)["supervisor"] is False)
        b = LineClient(s.sock, producer="farm", epoch=2)
        assert b.hello["result"]["last_seq"] == 0
        assert b.request("event", _event(1, 11))["result"] == {"ack": 1}
        assert b.request("event", _event(2, 12))["result"] == {"ack": 2}
        b.close()
        replaced = LineClient(s.sock, producer="farm", epoch=1, hello=False)
        gone = replaced.request("hello", {"role": "adapter", "producer": "farm", "epoch": 1})
        assert gone["error"]["code"] == -32005 and "replaced" in gone["error"]["message"]
        replaced.close()
        # kill -9 right after the acks: what was taken is still known, by content.
        assert s.stop(signal.SIGKILL) == -signal.SIGKILL
        s = start(tmp_path, callbacks, "--http", f"127.0.0.1:{port}")
        again = LineClient(s.sock, producer="farm", epoch=2)
        assert again.hello["result"]["last_seq"] == 2
        assert again.request("event", _event(2, 12))["result"] == {"ack": 2, "duplicate": True}
        assert again.request("event", _event(2, 13))["error"]["code"] == -32005
        assert _post(web, [_event(huge, 90)])[1] == {"acks": [{"ack": huge, "duplicate": True}]}
        assert again.request("event", _event(3, 14))["result"] == {"ack": 3}
        health = again.request("health")["result"]
        assert health["producers"] == {"farm": {"epoch": 2, "last_seq": 3},
                                       "web": {"epoch": 1, "last_seq": huge}}
        assert again.drain()["result"] == {"drained": True}
        again.close()
        assert s.proc.wait(60) == 0
    finally:
        s.close()
    recorded = _jobs(tmp_path / "audit.db")
    assert recorded == Counter({1: 1, 2: 1, 90: 1, 11: 1, 12: 1, 14: 1})


def admin_health(sock: Path) -> dict[str, Any]:
    with LineClient(sock, role="admin") as admin:
        return dict(admin.request("health")["result"])


def test_the_producer_state_survives_trims_and_restarts(tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    segments = tmp_path / "audit.db.events"
    # Each start journals into a new segment; one is trimmed once a later one is matched and
    # the producers' checkpoint is past it.
    for first, last in ((1, 300), (301, 301), (302, 302)):
        with served(tmp_path, callbacks) as s, LineClient(s.sock, producer="farm") as c:
            for seq in range(first, last + 1):
                assert c.request("event", _event(seq, seq))["result"] == {"ack": seq}
            assert c.drain()["result"] == {"drained": True}
            assert s.proc.wait(60) == 0
    # The first segment, with every line of seqs 1-300, is matched and trimmed away ...
    assert not (segments / "000001.log").exists()
    # ... and the producer's state is still known, from the trail's checkpoint.
    with served(tmp_path, callbacks) as s, LineClient(s.sock, producer="farm") as c:
        assert c.hello["result"]["last_seq"] == 302
        assert c.request("event", _event(300, 300))["result"] == {"ack": 300, "duplicate": True}
        assert c.request("event", _event(150, 999))["error"]["code"] == -32005
        assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    assert set(_jobs(tmp_path / "audit.db").values()) == {1}


def test_producers_on_a_postgresql_trail_survive_kill_9(tmp_path: Path, postgres_url: str) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    s = start(tmp_path, callbacks, "--audit", postgres_url)
    try:
        with LineClient(s.sock, producer="farm") as c:
            for seq in (1, 2, 3):
                assert c.request("event", _event(seq, seq))["result"] == {"ack": seq}
        assert s.stop(signal.SIGKILL) == -signal.SIGKILL
        s = start(tmp_path, callbacks, "--audit", postgres_url)
        with LineClient(s.sock, producer="farm") as c:
            assert c.hello["result"]["last_seq"] == 3
            assert c.request("event", _event(3, 3))["result"] == {"ack": 3, "duplicate": True}
            assert c.request("event", _event(2, 7))["error"]["code"] == -32005
            assert c.request("event", _event(4, 4))["result"] == {"ack": 4}
            assert c.drain()["result"] == {"drained": True}
        assert s.proc.wait(60) == 0
    finally:
        s.close()
    audit = open_audit(postgres_url, readonly=True)
    recorded = Counter(e.event.job for e in audit.events())
    audit.close()
    assert recorded == Counter({1: 1, 2: 1, 3: 1, 4: 1})
