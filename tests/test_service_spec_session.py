"""The example session of spec/service.md, played against a real `qbcallbacks serve`.

Each example block of the document's Examples section is a piece of one session: `>` lines are
sent, `<` lines are the answers expected on the same connection (matched by id; a `...` inside
a string stands for any text). A block that opens with `hello` opens a new connection, as a
supervisor or an admin would. A block that opens with `<` is a question the service asks: its
`>` line is the answer this stand-in supervisor gives. After the drain, the audit trail must
show that the example's events fired the callbacks of examples/callback.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from qbcallbacks.audit.backends import open_audit
from support.paths import EXAMPLES, ROOT

Message = dict[str, Any]


def example_blocks(text: str) -> list[list[tuple[str, Message]]]:
    """The `>`/`<` blocks of the Examples section, each as (direction, message) pairs."""
    section = text.split("\n## Examples", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for body in re.findall(r"^```\n(.*?)^```", section, re.S | re.M):
        pairs = [(line[0], json.loads(line[2:])) for line in body.splitlines()
                 if line[:2] in ("> ", "< ")]
        if pairs:
            blocks.append(pairs)
    return blocks


def like(expected: object, actual: object) -> bool:
    """Equal, except that `...` in an expected string stands for any text."""
    if isinstance(expected, str) and "..." in expected and isinstance(actual, str):
        pattern = ".*".join(re.escape(part) for part in expected.split("..."))
        return re.fullmatch(pattern, actual, re.S) is not None
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            like(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            like(e, a) for e, a in zip(expected, actual, strict=True))
    return expected == actual and type(expected) is type(actual)


class Connection:
    """One connection; the service's questions are answered from the document's book."""

    def __init__(self, path: Path, book: dict[str, Message], asked: list[Message]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.answers: queue.Queue[Message] = queue.Queue()
        self.book, self.asked = book, asked
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def send(self, message: Message) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()
        self.reader.join(timeout=30)

    def _read(self) -> None:
        with self.sock.makefile("rb") as lines:
            self._answer_all(lines)

    def _answer_all(self, lines: Any) -> None:
        for line in lines:
            message = json.loads(line)
            if "method" in message and "id" in message:
                self.asked.append(message)
                documented = self.book.get(message["method"])
                reply = ({"jsonrpc": "2.0", "id": message["id"], "result": documented}
                         if documented is not None else
                         {"jsonrpc": "2.0", "id": message["id"],
                          "error": {"code": -32601, "message": "not in the document"}})
                self.send(reply)
            else:
                self.answers.put(message)

    def answer(self, request_id: object, deadline: float = 120.0) -> Message:
        end = time.monotonic() + deadline
        while True:
            message = self.answers.get(timeout=max(0.0, end - time.monotonic()))
            if message.get("id") == request_id:
                return message


def wait_for(path: Path, proc: subprocess.Popen[bytes], deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert proc.poll() is None, "serve ended before it listened"
        assert time.monotonic() < end, "serve never listened"
        time.sleep(0.05)


def play(blocks: list[list[tuple[str, Message]]], sock: Path, asked: list[Message]) -> None:
    book = {pairs[0][1]["method"]: pairs[1][1]["result"]
            for pairs in blocks if pairs[0][0] == "<" and len(pairs) > 1}
    opened: list[Connection] = []
    try:
        for pairs in blocks:
            if pairs[0][0] == "<":
                continue  # the service's question: answered from the book when it is asked
            if not opened or pairs[0][1].get("method") == "hello":
                opened.append(Connection(sock, book, asked))
            exchange(opened[-1], pairs)
    finally:
        for connection in opened:
            connection.close()


def exchange(current: Connection, pairs: list[tuple[str, Message]]) -> None:
    last: Message = {}
    for direction, message in pairs:
        if direction == ">":
            current.send(message)
            last = message
        else:
            got = current.answer(message["id"])
            assert like(message, got), (last, message, got)


def test_the_documented_session_runs_and_fires(tmp_path: Path) -> None:
    blocks = example_blocks((ROOT / "spec" / "service.md").read_text(encoding="utf-8"))
    sent = [m for pairs in blocks for d, m in pairs if d == ">" and m.get("method") == "event"]
    assert sent and any(m.get("method") == "drain" for p in blocks for d, m in p if d == ">")
    sock, audit = tmp_path / "qbcallbacks.sock", tmp_path / "audit.db"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    asked: list[Message] = []
    callbacks = tmp_path / "callback"  # owned and writable by this user only, as serve wants
    shutil.copytree(EXAMPLES, callbacks)
    callbacks.chmod(0o755)
    for path in callbacks.iterdir():
        path.chmod(0o644)
    with subprocess.Popen([sys.executable, "-m", "qbcallbacks", "serve", str(callbacks),
                           "--listen", f"unix:{sock}", "--audit", str(audit),
                           "--workdir", str(tmp_path / "run")], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        try:
            wait_for(sock, proc)
            play(blocks, sock, asked)
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.terminate()
    store = open_audit(audit, readonly=True)
    try:
        fired = {(r.job, r.callback, r.status) for r in store.query(session=None)}
    finally:
        store.close()
    # The documented events fire the examples' callbacks, which ask the documented question.
    assert (12, "submitted.py", "ok") in fired
    assert (12, "checkWork.pl", "ok") in fired
    (question,) = [pairs[0][1] for pairs in blocks if pairs[0][0] == "<"]
    assert any(like({**question, "id": m["id"]}, m) for m in asked), asked
