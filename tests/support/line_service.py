"""A small stand-in for `qbcallbacks serve` speaking its line protocol (`spec/service.md`), for
the tests of clients: one connection, events acked by `seq`, a call sent back to the client."""

from __future__ import annotations

import json
import socket
import threading


class FakeService:
    """Acks events by `seq` (a number not above the last is a duplicate), refuses
    `type: "bad"` and `seq` 13 (busy), and asks `jobinfo` after the first event."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.last_seq = 0
        self.journaled: list[int] = []
        self.answers: list[object] = []
        self.hellos: list[dict[str, object]] = []
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        with conn, conn.makefile("rb") as reader:
            self.talk(conn, reader)

    def talk(self, conn: socket.socket, reader) -> None:
        asked = False
        for raw in reader:
            msg = json.loads(raw)
            if "method" not in msg:
                self.answers.append(msg.get("result", msg.get("error")))
                self.answered.set()
                continue
            params = msg["params"]
            if msg["method"] == "hello":
                self.hellos.append(params)
                reply = {"result": {"role": params["role"], "producer": params.get("producer"),
                                    "epoch": params.get("epoch"), "last_seq": self.last_seq}}
            elif msg["method"] == "health":
                reply = {"result": {"ok": True, "last_seq": self.last_seq}}
            elif params.get("type") == "bad":
                reply = {"error": {"code": -32602, "message": "'type' must be one of job"}}
            elif params["seq"] == 13:
                reply = {"error": {"code": -32001, "message": "queue full"}}
            elif params["seq"] <= self.last_seq:
                reply = {"result": {"ack": params["seq"], "duplicate": True}}
            else:
                self.last_seq = params["seq"]
                self.journaled.append(params["seq"])
                reply = {"result": {"ack": params["seq"]}}
            conn.sendall((json.dumps({"jsonrpc": "2.0", "id": msg["id"], **reply}) + "\n")
                         .encode())
            if not asked and msg["method"] == "event":
                asked = True
                conn.sendall(b'{"jsonrpc":"2.0","id":"s1","method":"jobinfo",'
                             b'"params":{"args":["-id",1]}}\n'
                             b'{"jsonrpc":"2.0","id":"s2","method":"explode",'
                             b'"params":{"action":"warp","job":1}}\n')

    def close(self) -> None:
        self.listener.close()
        if hasattr(self, "conn"):
            self.conn.close()
        self.thread.join(10)
