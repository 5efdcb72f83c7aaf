"""The requests of one socket read are taken as one batch: each line still gets its own answer,
in order, an event acked only once journaled, a retry within the batch acked as a duplicate, a
bad line answered without losing the good ones around it; and a batch cut by a kill or by a
supervisor that stops reading loses nothing and doubles nothing."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks.audit.backends import open_audit
from qbcallbacks.audit.journal import Position
from qbcallbacks.dispatch.dispatcher import BackPressureError
from qbcallbacks.service.core import RpcFault, Service
from qbcallbacks.service.lines import SocketLines
from qbcallbacks.service.metrics import Metrics
from qbcallbacks.service.proxy import SupervisorProxy
from qbcallbacks.stream import OverlongLine, stream_lines
from support.hosts import run_until_marker
from support.service import LineClient, callback_dir, eventually, served


def _params(seq: int, job: int | None = None, extra: str = "",
            named: bool = False) -> dict[str, Any]:
    """An event's params; its job by id (the usual way), or `named` as an object."""
    jid = job or seq
    return {"seq": seq, "type": "job", "event": "submitted",
            "job": {"id": jid, "name": f"j{jid}"} if named else jid, "extra": extra}


def _line(key: Any, params: dict[str, Any], method: str = "event") -> bytes:
    return (json.dumps({"jsonrpc": "2.0", "id": key, "method": method,
                        "params": params}, ensure_ascii=False) + "\n").encode()


def _answers(c: LineClient, count: int) -> list[dict[str, Any]]:
    return [json.loads(c.rfile.readline()) for _ in range(count)]


def _recorded(db: Path) -> Counter[int]:
    """How often the trail recorded each job's event."""
    audit = open_audit(db, readonly=True)
    try:
        return Counter(e.event.job for e in audit.events())
    finally:
        audit.close()


def _drain(c: LineClient, s: Any) -> None:
    assert c.drain()["result"] == {"drained": True}
    c.close()
    assert s.proc.wait(60) == 0


def test_a_read_of_good_and_bad_lines_answers_every_line_in_order(tmp_path: Path) -> None:
    with served(tmp_path, callback_dir(tmp_path, asking=False)) as s, \
            LineClient(s.sock, producer="mix") as c:
        c.sock.sendall(b"".join([
            _line(1, _params(1)),
            b"{not json\n",
            _line(2, _params(2)),
            _line(3, {"seq": "two", "type": "job", "event": "submitted", "job": 2}),
            b"[1, 2]\n",
            b"   \r\n",
            _line(4, {}, "health"),
            _line(5, _params(3, named=True)),
            _line(6, _params(2)),  # a retry of seq 2 in the same read
            _line(7, _params(4, job=9)),
            _line(8, {**_params(4), "extra": "other"}),  # seq 4 again, other content
            _line(True, _params(5)),  # an id may not be a boolean
            _line(9, _params(5)),
        ]))
        got = _answers(c, 11)
        assert [m["id"] for m in got] == [1, None, 2, 3, None, 4, 5, 6, 7, 8, True]
        assert got[0]["result"] == {"ack": 1} and got[2]["result"] == {"ack": 2}
        assert got[1]["error"]["code"] == -32700
        assert got[3]["error"]["code"] == -32602
        assert got[4]["error"]["code"] == -32600
        # The health request was answered after the events before it, before those after.
        assert got[5]["result"]["last_seq"] == 2
        assert got[6]["result"] == {"ack": 3}
        assert got[7]["result"] == {"ack": 2, "duplicate": True}
        assert got[8]["result"] == {"ack": 4}
        assert got[9]["error"]["code"] == -32005
        assert got[10]["error"]["code"] == -32600
        assert _answers(c, 1)[0] == {"jsonrpc": "2.0", "id": 9, "result": {"ack": 5}}
        _drain(c, s)
    assert _recorded(tmp_path / "audit.db") == Counter({1: 1, 2: 1, 3: 1, 9: 1, 5: 1})


def test_a_read_that_ends_mid_line_is_answered_up_to_it_and_the_rest_later(
        tmp_path: Path) -> None:
    with served(tmp_path, callback_dir(tmp_path, asking=False)) as s, \
            LineClient(s.sock, producer="cut") as c:
        whole = _line(1, _params(1)) + _line(2, _params(2, extra="d\u00e9j\u00e0 vu"))
        # Cut inside the second line's two-byte character: the first is acked meanwhile.
        cut = whole.index("\u00e9".encode()) + 1
        c.sock.sendall(whole[:cut])
        assert _answers(c, 1)[0]["result"] == {"ack": 1}
        c.sock.sendall(whole[cut:])
        assert _answers(c, 1)[0]["result"] == {"ack": 2}
        _drain(c, s)
    audit = open_audit(tmp_path / "audit.db", readonly=True)
    try:
        assert [e.event.extra for e in audit.events()] == ["", "d\u00e9j\u00e0 vu"]
    finally:
        audit.close()


def test_a_producer_that_retries_half_a_batch_is_acked_each_event_once(tmp_path: Path) -> None:
    with served(tmp_path, callback_dir(tmp_path, asking=False)) as s, \
            LineClient(s.sock, producer="half") as c:
        c.sock.sendall(b"".join(_line(seq, _params(seq)) for seq in range(1, 11)))
        assert [m["result"] for m in _answers(c, 10)] == [{"ack": n} for n in range(1, 11)]
        # The second half again with five new ones, then a retry within one read.
        seqs = [*range(6, 16), 14, 15, 16, 16]
        c.sock.sendall(b"".join(_line(100 + i, _params(seq)) for i, seq in enumerate(seqs)))
        got = _answers(c, len(seqs))
        assert [m["id"] for m in got] == [100 + i for i in range(len(seqs))]
        assert [m["result"] for m in got] == (
            [{"ack": n, "duplicate": True} for n in range(6, 11)]
            + [{"ack": n} for n in range(11, 16)]
            + [{"ack": 14, "duplicate": True}, {"ack": 15, "duplicate": True}, {"ack": 16},
               {"ack": 16, "duplicate": True}])
        assert c.request("health")["result"]["last_seq"] == 16
        _drain(c, s)
    recorded = _recorded(tmp_path / "audit.db")
    assert sorted(recorded) == list(range(1, 17))
    assert set(recorded.values()) == {1}


def test_a_supervisor_that_stops_reading_its_acks_is_closed_and_loses_nothing(
        tmp_path: Path) -> None:
    count = 40_000  # far more acks than the socket's buffers hold
    with served(tmp_path, callback_dir(tmp_path, asking=False), "--read-timeout", "1") as s:
        c = LineClient(s.sock, producer="deaf")
        data = b"".join(_line(seq, _params(seq, job=seq % 50 + 1))
                        for seq in range(1, count + 1))

        def send() -> None:
            with contextlib.suppress(OSError):  # the service closed it: what is waited for
                c.sock.sendall(data)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        # It never reads: within the write bound the service gives up on it.
        eventually(lambda: not sender.is_alive())
        c.sock.settimeout(60)
        _read_to_end(c.sock)
        c.close()
        # What it journaled before it gave up is known; the rest is taken on a re-send.
        with LineClient(s.sock, producer="deaf") as again:
            last = again.hello["result"]["last_seq"]
            assert 0 < last < count
            again.sock.sendall(b"".join(_line(seq, _params(seq, job=seq % 50 + 1))
                                        for seq in range(last - 9, last + 11)))
            got = [m["result"] for m in _answers(again, 20)]
            assert got[:10] == [{"ack": n, "duplicate": True} for n in range(last - 9, last + 1)]
            assert got[10:] == [{"ack": n} for n in range(last + 1, last + 11)]
            assert again.request("health")["result"]["last_seq"] == last + 10
            _drain(again, s)
    assert sum(_recorded(tmp_path / "audit.db").values()) == last + 10


def _read_to_end(sock: socket.socket) -> None:
    """Read what the peer wrote until it closes."""
    with contextlib.suppress(ConnectionResetError):
        while sock.recv(1 << 20):
            pass


#: The service with a pause between a batch's journaling and its acks: the marker says the
#: batch is journaled and no ack has been written.
_HOLD_ACKS = """
import sys, time
from pathlib import Path
from qbcallbacks.service import core
from qbcallbacks.cli import main

marker = Path(ARGS[0])
events = core.Service.events

def journaled_then_hold(self, batch, producer, epoch):
    answers = events(self, batch, producer, epoch)
    if len(batch) >= 2:
        Path(ARGS[0] + ".tmp").write_text(str(len(batch)))
        Path(ARGS[0] + ".tmp").rename(marker)
        time.sleep(600)
    return answers

core.Service.events = journaled_then_hold
sys.argv = ["qbcallbacks", "serve", *ARGS[1:]]
main()
"""


def test_a_service_killed_between_a_batch_journaled_and_its_acks_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    callbacks = callback_dir(tmp_path, asking=False)
    sock, marker = tmp_path / "svc.sock", tmp_path / "journaled"
    batch = b"".join(_line(seq, _params(seq)) for seq in range(1, 101))
    got: list[bytes] = []

    def supervisor() -> None:
        eventually(sock.exists)
        c = LineClient(sock, producer="killed")
        c.sock.sendall(batch)  # in one write: the service reads it as one batch or a few
        with contextlib.suppress(OSError):
            got.extend(c.rfile.readlines())
        c.close()

    client = threading.Thread(target=supervisor, daemon=True)
    client.start()
    args = [str(marker), str(callbacks), "--listen", f"unix:{sock}", "--workdir",
            str(tmp_path / "run"), "--audit", str(tmp_path / "audit.db")]
    script = f"ARGS = {args!r}\n{_HOLD_ACKS}"
    assert run_until_marker(script, marker) == -9
    client.join(60)
    assert not client.is_alive()
    # No ack came for the batch that was journaled when the service died.
    held = int(marker.read_text())
    acked = {json.loads(line)["id"] for line in got if b'"ack"' in line}
    assert len(acked) <= 100 - held
    # The restarted service knows what was journaled; the supervisor re-sends everything.
    with served(tmp_path, callbacks) as s, LineClient(s.sock, producer="killed") as c:
        last = c.hello["result"]["last_seq"]
        assert last >= held
        c.sock.sendall(batch)
        answers = [m["result"] for m in _answers(c, 100)]
        assert answers == [{"ack": n, "duplicate": True} if n <= last else {"ack": n}
                           for n in range(1, 101)]
        _drain(c, s)
    recorded = _recorded(tmp_path / "audit.db")
    assert sorted(recorded) == list(range(1, 101))
    assert set(recorded.values()) == {1}


class _Chunks:
    """A socket whose reads return the given chunks, then the end of the stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


_LINE_BYTES = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from(
    [b"", b"\r", b"a\r", b"\r\r", b"x" * 30, b"x" * 31, b"y" * 32 + b"\r"])


@given(st.lists(_LINE_BYTES, max_size=12), st.booleans(),
       st.lists(st.integers(min_value=1, max_value=50), max_size=10))
def test_a_read_s_lines_are_the_lines_the_one_at_a_time_reader_gives(
        lines: list[bytes], ended: bool, cuts: list[int]) -> None:
    data = b"\n".join(lines) + (b"\n" if ended and lines else b"")
    chunks, at = [], 0
    for size in cuts:
        chunks.append(data[at:at + size])
        at += size
    chunks = [c for c in chunks if c] + ([data[at:]] if data[at:] else [])
    waits: list[int] = []
    source = SocketLines(_Chunks(chunks), lambda: waits.append(1))  # type: ignore[arg-type]
    batched: list[bytes | OverlongLine] = []
    while batch := source.batch(31):
        assert batch
        batched.extend(batch)
        if isinstance(batch[-1], OverlongLine):
            break
    assert batched == list(stream_lines(io.BytesIO(data), 31))


class _Roomy:
    """A dispatcher stand-in that takes `room` events and then refuses with back pressure,
    as a full queue does: what the service does with a batch refused halfway."""

    def __init__(self, room: int) -> None:
        self.room, self.taken = room, list[list[Any]]()
        self.journal = SimpleNamespace(keep_from=Position(1, 0), key_end=Position(1, 0))
        self.queue_depth = 0

    def emit(self, event: Any, job: Any = None, *, key: Any = None) -> None:
        error = self.emit_many([(event, job, key)])[1]
        if error is not None:
            raise error

    def emit_many(self, items: list[tuple[Any, Any, Any]]) -> tuple[int, Exception | None]:
        took = items[:self.room]
        self.room -= len(took)
        self.taken.extend(key for _, _, key in took)
        return len(took), (None if len(took) == len(items) else BackPressureError("full"))


def test_a_batch_refused_halfway_is_answered_as_events_sent_one_at_a_time() -> None:
    dispatcher = _Roomy(room=3)
    service = Service(dispatcher, SupervisorProxy(1.0), Metrics())  # type: ignore[arg-type]
    try:
        got = service.events([_params(seq) for seq in range(1, 7)], "full", 1)
        assert got[:3] == [{"ack": 1}, {"ack": 2}, {"ack": 3}]
        refused, *owed = got[3:]
        assert isinstance(refused, RpcFault) and refused.code == -32001
        assert all(isinstance(f, RpcFault) and f.code == -32004
                   and f.data == {"resend_from": 4} for f in owed)
        # The supervisor re-sends from 4, with a retry of 3 and of 5 in the same batch.
        dispatcher.room = 10
        got = service.events([_params(seq) for seq in (3, 4, 5, 5, 6)], "full", 1)
        assert got == [{"ack": 3, "duplicate": True}, {"ack": 4}, {"ack": 5},
                       {"ack": 5, "duplicate": True}, {"ack": 6}]
        assert [key[2] for key in dispatcher.taken] == [1, 2, 3, 4, 5, 6]
    finally:
        service.stopped.set()
