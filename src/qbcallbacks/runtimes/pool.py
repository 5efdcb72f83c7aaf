"""Warm worker processes and the host's side of their pipe, shared by Python and Perl.

A worker is a long-lived interpreter that runs one callback at a time. It talks to the host
over two pipes given to it as file descriptors, one JSON object per line (JSON escapes line
breaks, so a line is always a whole message):

    host -> worker  {"op": "run", ...}                 start a callback
    worker -> host  {"op": "call", "fn": f, "args": a} a `qb` call; the host answers with
    host -> worker  {"op": "reply", "value": v} or {"op": "reply", "error": text}
    worker -> host  {"op": "done", "status": ..., "exit_code": ..., "error": ..., "dropped": n,
                     "recycle": why}   (`recycle` only when the run left the worker unclean:
                                        the worker exits and the host replaces it)

The worker's stdout and stderr are one unlinked temporary file opened for appending; the
host empties it before a run and reads at most `output_cap` bytes of it afterwards, so output
survives a crash, keeps its order, and can never fill a pipe and block the worker. (The
workers also stop writing Python- or Perl-level output at the cap; a child process that
writes to the inherited descriptors is limited only by the run's timeout.)

The host never trusts a worker: every read has the run's deadline, a worker that overruns is
killed with what the current run started (it leads its own session; programs earlier runs
left in the background survive), one that dies or breaks the protocol is reaped, and either is
replaced by a fresh worker at once. The deadline also covers the time the host spends
answering `qb` calls, whatever the supervisor does (see `asking`): at the deadline the run
ends `timeout` and its worker is killed, and the supervisor's late answer is dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import QbCallbacksError
from ._process_group import boot_ticks, children, started_since
from .api import Invocation, RunResult, keep_output, log
from .asking import Answerers, reply_to
from .qb.module import MAX_MESSAGE_BYTES

#: Largest message a worker may send; beyond it the worker is treated as broken (the
#: workers refuse to send a larger `qb` call).
MAX_MESSAGE = MAX_MESSAGE_BYTES


class WorkerGone(QbCallbacksError):
    """The worker closed its pipe or broke the protocol."""


class WorkerTimeout(QbCallbacksError):
    """The run's deadline passed while waiting on the worker."""


class PoolClosed(QbCallbacksError):
    """`run` was called on a runtime after `close`."""


class Worker:
    """One worker process and the host ends of its pipes."""

    #: When the current run began (`boot_ticks`) and the worker's children then: what
    #: started before the run survives a kill.
    run_ticks = 0
    run_spared: frozenset[int] = frozenset()

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str,
                 hello: dict[str, Any] | None = None) -> None:
        from_worker, child_w = os.pipe()
        child_r, to_worker = os.pipe()
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        flags = fcntl.fcntl(self.out.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self.out.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        try:
            self.proc = subprocess.Popen(
                [*argv, str(child_r), str(child_w)], stdin=subprocess.DEVNULL, stdout=self.out,
                stderr=self.out, pass_fds=(child_r, child_w), env=env, cwd=cwd,
                start_new_session=True, close_fds=True,
            )
        except OSError:
            for fd in (from_worker, child_w, child_r, to_worker):
                os.close(fd)
            self.out.close()
            raise
        os.close(child_r)
        os.close(child_w)
        os.set_blocking(to_worker, False)
        self.rfd = from_worker
        self.wfd = to_worker
        self.buf = bytearray()
        self.runs = 0
        self.dead = False
        if hello is not None:
            # Small enough for the pipe's buffer: written now, read when the worker is up.
            # If the worker died at once, its first run reports how.
            with contextlib.suppress(WorkerGone, WorkerTimeout):
                self.send(hello, time.monotonic() + 5.0)

    def send(self, message: dict[str, Any], deadline: float) -> None:
        data = memoryview(json.dumps(message, default=str).encode("utf-8") + b"\n")
        while data:
            # The descriptor does not block: try first, and wait only while the pipe is full.
            try:
                n = os.write(self.wfd, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:  # EPIPE: the worker is gone
                raise WorkerGone(str(exc)) from None
            data = data[n:]
            if not data:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout("worker did not take its input in time")
            select.select([], [self.wfd], [], remaining)

    def recv(self, deadline: float) -> dict[str, Any]:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 1]
                try:
                    message = json.loads(line)
                except ValueError:
                    raise WorkerGone("worker sent a malformed message") from None
                if not isinstance(message, dict):
                    raise WorkerGone("worker sent a malformed message")
                return message
            if len(self.buf) > MAX_MESSAGE:
                raise WorkerGone("worker sent an oversized message")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerTimeout("worker overran")
            ready, _, _ = select.select([self.rfd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise WorkerGone("worker closed its pipe")
            self.buf += chunk

    def reset_output(self) -> None:
        os.ftruncate(self.out.fileno(), 0)

    def take_output(self, cap: int) -> tuple[str, int]:
        fd = self.out.fileno()
        size = os.fstat(fd).st_size
        return keep_output(os.pread(fd, min(size, cap + 4), 0)[:size], cap)[0], max(0, size - cap)

    def kill(self) -> None:
        """Kill the worker and what the current run started; reap it.

        Programs an earlier run left running in the background (as the original documentation
        recommends for long work) are spared: only members of the worker's process group
        started since the current run began are killed. Without /proc, the whole group."""
        self.dead = True
        for pid in started_since(self.proc.pid, self.run_ticks, self.run_spared):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self._close_fds()

    def stop(self, grace: float = 1.0) -> None:
        """Ask the worker to end (its input closes); kill it if it does not within `grace`.

        Programs a callback started in the background are left running, as they would be
        after the original's callback returned.
        """
        self.dead = True
        with contextlib.suppress(OSError):
            os.close(self.wfd)
        self.wfd = -1
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._close_fds()

    def describe_exit(self) -> tuple[int | None, str]:
        """The exit code and words for a worker that died (waits briefly to reap it)."""
        try:
            code = self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            self.kill()
            return None, "worker stopped answering and was killed"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return code, f"worker died from {name}"
        return code, f"worker exited with code {code} in the middle of the callback"

    def _close_fds(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.rfd = self.wfd = -1

    def dispose(self) -> None:
        """Drop the output file (after `kill` or `stop`)."""
        self.out.close()


class WorkerPool:
    """Up to `size` warm workers, started on demand and replaced when one is lost."""

    def __init__(self, start: Callable[[], Worker], size: int, max_runs: int) -> None:
        self._start = start
        self._size = size
        self._max_runs = max_runs
        self._idle: list[Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        #: Where workers' `qb` calls are answered, so a slow supervisor cannot hold a run.
        self.answerers = Answerers(2 * size)

    def acquire(self, deadline: float) -> Worker | None:
        """An idle worker, a new one, or None if none came free before `deadline`."""
        with self._cond:
            while True:
                if self._closed:
                    raise PoolClosed("the runtime is closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self._size:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
        try:
            return self._start()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def release(self, worker: Worker, reusable: bool) -> None:
        """Give a worker back; a lost one is replaced by a fresh worker at once."""
        worker.runs += 1
        retire = not reusable or worker.runs >= self._max_runs
        with self._cond:
            if not retire and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        if not worker.dead:
            worker.stop()
        worker.dispose()
        replacement: Worker | None = None
        if not self._closed:
            try:
                replacement = self._start()
            except OSError as exc:
                log.warning("cannot start a replacement worker: %s", exc)
        with self._cond:
            if replacement is not None and not self._closed:
                self._idle.append(replacement)
            else:
                self._count -= 1
                if replacement is not None:
                    replacement.stop()
                    replacement.dispose()
            self._cond.notify()

    def idle_pids(self) -> tuple[int, ...]:
        """Process ids of the workers waiting for a run."""
        with self._cond:
            return tuple(w.proc.pid for w in self._idle)

    def warm(self) -> None:
        """Start workers until the pool is full."""
        while True:
            with self._cond:
                if self._closed or self._count >= self._size:
                    return
                self._count += 1
            worker = self._start()
            with self._cond:
                self._idle.append(worker)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        self.answerers.close()
        for worker in idle:
            worker.stop()
            worker.dispose()


def run_in_pool(pool: WorkerPool, invocation: Invocation, request: dict[str, Any],
                answer: Callable[[str, list[Any]], Any], cap: int) -> RunResult:
    """Run one callback in a pooled worker, answering its `qb` calls until it is done."""
    start = time.monotonic()
    deadline = start + invocation.timeout
    try:
        worker = pool.acquire(deadline)
    except OSError as exc:
        return RunResult(status="error", duration=time.monotonic() - start,
                         error=f"cannot start a worker ({exc.strerror or exc}): {exc.filename}")
    if worker is None:
        return RunResult(status="timeout", duration=time.monotonic() - start,
                         error=f"no worker came free within {invocation.timeout:g}s")
    reusable = recycled = False
    try:
        message = _converse(worker, request, answer, deadline, pool.answerers)
        output, dropped = worker.take_output(cap)
        recycled = bool(message.get("recycle"))
        reusable = not recycled
        code, error = message.get("exit_code"), message.get("error")
        return RunResult(
            status="ok" if message.get("status") == "ok" else "error",
            exit_code=code if isinstance(code, int) else None,
            error=error if isinstance(error, str) else None,
            output=output, output_dropped=dropped + _int(message.get("dropped")),
            duration=time.monotonic() - start,
        )
    except WorkerTimeout:
        worker.kill()
        output, dropped = worker.take_output(cap)
        return RunResult(status="timeout", output=output, output_dropped=dropped,
                         duration=time.monotonic() - start,
                         error=f"callback ran longer than {invocation.timeout:g}s; its worker "
                               "was killed and replaced")
    except WorkerGone as exc:
        if _reaped(worker):
            code, words = worker.describe_exit()
        else:
            code, words = None, f"worker broke the protocol ({exc}) and was killed"
        worker.kill()
        output, dropped = worker.take_output(cap)
        return RunResult(status="crashed", exit_code=code, output=output,
                         output_dropped=dropped, duration=time.monotonic() - start,
                         error=f"{words}; it was replaced")
    finally:
        if not reusable and not recycled and not worker.dead:
            worker.kill()  # an unexpected error above: never reuse a worker in doubt
        pool.release(worker, reusable)


def _converse(worker: Worker, request: dict[str, Any], answer: Callable[[str, list[Any]], Any],
              deadline: float, answerers: Answerers) -> dict[str, Any]:
    """Start the run and answer the worker's `qb` calls (on `answerers`, waiting no longer
    than the deadline); its `done` message."""
    worker.run_ticks = boot_ticks()
    worker.run_spared = children(worker.proc.pid)
    worker.reset_output()
    worker.send(request, deadline)
    while True:
        message = worker.recv(deadline)
        op = message.get("op")
        if op == "done":
            return message
        if op != "call":
            raise WorkerGone(f"worker sent an unexpected {op!r} message")
        # The answer is due by the deadline; one that comes later is dropped.
        reply = answerers.ask(functools.partial(reply_to, answer, message, deadline), deadline)
        if reply is None or time.monotonic() >= deadline:
            raise WorkerTimeout("the run's deadline passed during a qb call")
        worker.send(reply, deadline)


def _reaped(worker: Worker) -> bool:
    """Whether the worker exits within a moment (it closed its pipe because it is dying)."""
    try:
        worker.proc.wait(1.0)
    except subprocess.TimeoutExpired:
        return False
    return True


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
