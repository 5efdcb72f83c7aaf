"""An isolated Python worker: runs callbacks one at a time for the host, over two pipes.

Started by the host as `python -I _worker_main.py <qbmodule.py> <read fd> <write fd>`. It
imports nothing from qbcallbacks (only the standard library and the `qb` module file, loaded by
path), so it starts fast and cannot disturb the host's packages. The protocol is described in
`qbcallbacks.runtimes._pool`.

A script may do anything to this process: `sys.exit` and exceptions end only the callback;
`os._exit`, a segfault or an endless loop end the worker, and the host replaces it.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import sys
import threading
import traceback
from types import CodeType, ModuleType
from typing import Any


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Budget:
    """How many output bytes the current run may still write, and how many it lost."""

    def __init__(self) -> None:
        self.room = 0
        self.dropped = 0

    def reset(self, cap: int) -> None:
        self.room = cap
        self.dropped = 0

    def write(self, fd: int, data: bytes) -> None:
        kept = data[:self.room] if self.room > 0 else b""
        if kept:
            _write_all(fd, kept)
            self.room -= len(kept)
        self.dropped += len(data) - len(kept)


class _CappedBytes:
    def __init__(self, budget: _Budget, fd: int) -> None:
        self._budget, self._fd = budget, fd

    def write(self, data: bytes) -> int:
        self._budget.write(self._fd, bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _CappedText:
    """`sys.stdout` / `sys.stderr` of a run: written through to the output file up to the cap.

    Writing straight to the descriptor keeps the order with output of child processes and
    keeps what was printed before an `os._exit` or a crash.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, budget: _Budget, fd: int) -> None:
        self._budget, self._fd = budget, fd
        self.buffer = _CappedBytes(budget, fd)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._budget.write(self._fd, text.encode("utf-8", "replace"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class Worker:
    def __init__(self, qb: ModuleType, rfd: int, wfd: int) -> None:
        self.qb = qb
        self.input = os.fdopen(rfd, "rb")
        self.wfd = wfd
        self.budget = _Budget()
        self.run_id = 0
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[tuple[int, int], CodeType]] = {}
        sys.stdout = _CappedText(self.budget, 1)
        sys.stderr = _CappedText(self.budget, 2)

    def send(self, message: dict[str, Any]) -> None:
        _write_all(self.wfd, json.dumps(message, default=str).encode("utf-8") + b"\n")

    def receive(self) -> dict[str, Any] | None:
        line = self.input.readline()
        if not line:
            return None
        message = json.loads(line)
        return message if isinstance(message, dict) else None

    def serve(self) -> None:
        while True:
            message = self.receive()
            if message is None:
                return
            if message.get("op") == "run":
                self.send(self.run(message))

    def call_for(self, run_id: int) -> Any:
        qb = self.qb

        def call(fn: str, args: list[Any]) -> Any:
            if run_id != self.run_id:
                raise qb.QbError("this callback is over; qb cannot be used any more")
            try:
                request = {"op": "call", "fn": fn, "args": args}
                json.dumps(request)
            except (TypeError, ValueError) as exc:
                raise qb.QbError(f"{fn}: arguments must be plain data: {exc}") from None
            with self.lock:
                self.send(request)
                reply = self.receive()
            if reply is None:
                os._exit(70)  # the host went away: nothing left to report to
            if "error" in reply:
                raise qb.QbError(str(reply["error"]))
            return reply.get("value")

        return call

    def code_of(self, message: dict[str, Any]) -> CodeType:
        name = str(message["name"])
        inline = message.get("code")
        if isinstance(inline, str):
            return compile(inline, name, "exec", dont_inherit=True)
        path = str(message["path"])
        info = os.stat(path)
        key = (info.st_size, info.st_mtime_ns)
        hit = self.cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        with open(path, "rb") as fh:
            code = compile(fh.read(), path, "exec", dont_inherit=True)
        self.cache[path] = (key, code)
        return code

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        self.run_id += 1
        self.budget.reset(int(message.get("cap", 65536)))
        qb = self.qb
        scope = qb.Scope(int(message["jobid"]), message.get("workid"),
                         int(message.get("subid", -1)), str(message.get("event", "")),
                         self.call_for(self.run_id))
        token = qb.current.set(scope)
        done: dict[str, Any] = {"op": "done", "status": "ok", "exit_code": 0, "error": None}
        try:
            os.chdir(str(message["cwd"]))
            name = str(message["name"])
            sys.argv = [name]
            try:
                code = self.code_of(message)
            except OSError as exc:
                raise Unreadable(f"cannot read the script {name}: {exc.strerror}") from None
            env = {"__name__": "__main__", "__file__": name, "__builtins__": builtins, "qb": qb}
            exec(code, env)
        except SystemExit as exc:
            done.update(exit_outcome(exc.code))
        except BaseException as exc:
            done.update(status="error", exit_code=1, error=describe_exception(exc))
        finally:
            self.run_id += 1  # calls from threads the script left behind now fail
            qb.current.reset(token)
            sys.stdout.flush()
            sys.stderr.flush()
        done["dropped"] = self.budget.dropped
        return done


def exit_outcome(code: object) -> dict[str, Any]:
    if code is None or code == 0:
        return {"status": "ok", "exit_code": 0}
    if isinstance(code, int):
        return {"status": "error", "exit_code": code,
                "error": f"the callback called sys.exit({code})"}
    return {"status": "error", "exit_code": 1, "error": f"the callback exited: {code}"}


class Unreadable(Exception):
    """The script file could not be read (the message says why; no traceback is useful)."""


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, Unreadable):
        return str(exc)
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()


def _load_qb(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("qb", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the qb module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["qb"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    qb_path, rfd, wfd = argv[1], int(argv[2]), int(argv[3])
    Worker(_load_qb(qb_path), rfd, wfd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
