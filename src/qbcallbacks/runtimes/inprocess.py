"""In-process Python runs: the lowest latency, for sites that trust their callback scripts.

Scripts run on a small set of reusable threads ("lanes") so that the caller can stop waiting
at the timeout. What this mode can and cannot do, honestly:

* `sys.exit()`, `exit()` and exceptions end the callback, never the host.
* Output of `print`/`sys.stdout`/`sys.stderr` is captured per run: the first in-process run
  wraps `sys.stdout` and `sys.stderr` in a proxy that gives a running callback its own stream
  objects (writing to its capped buffer; a context variable says which run is current) and
  sends everything else where it went before. Closing or detaching them closes only the run's
  streams; a callback that replaces `sys.stdout` or `sys.stderr`, or closes or reopens
  descriptors 0-2, has them put back when it ends (other threads of the host see the change
  while it runs: the process has one set). Output written to file descriptors directly (child
  processes, C code) is not captured.
* A timeout is reported on time, and the callback's thread is interrupted by an exception
  raised in it asynchronously (`CallbackInterrupted`, a `BaseException`, so `except
  Exception` does not swallow it). That stops pure-Python loops, but not a call blocked in C
  (`time.sleep`, a socket read) until it returns, nor a script that catches everything; such
  a thread keeps running in the background and is counted in `stuck_threads`. Nothing can
  stop `os._exit` or a segfault from taking the host down. Use isolated mode for any script
  you do not fully trust.
* The working directory is the host's (it is process-wide).
* Compiled code is reused while the script's bytes, read again at every run, are the same
  (`scripts.ProgramCache`); inline code is cached by its text.
"""

from __future__ import annotations

import builtins
import contextvars
import ctypes
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

from ..model.limits import default_limits
from ..model.supervisor import HostError, Supervisor
from .api import Invocation, RunResult, log
from .outcome import Unreadable, describe_exception, exit_outcome
from .qb import module as qbmodule
from .qb.answers import answer
from .scripts import ProgramCache, ScriptRefused

_CACHE_SIZE = 512


class CallbackInterrupted(BaseException):
    """Raised inside an in-process callback's thread when its timeout has passed."""


class _Capture:
    def __init__(self, cap: int) -> None:
        self.room = cap
        self.parts: list[str] = []
        self.dropped = 0
        self.streams = (_RunStream(self, "<stdout>"), _RunStream(self, "<stderr>"))

    def write(self, text: str) -> int:
        if self.room > 0:
            data = text.encode("utf-8", "replace")
            kept = data[:self.room]
            self.parts.append(kept.decode("utf-8", "replace"))
            self.room -= len(kept)
            self.dropped += len(data) - len(kept)
        else:
            self.dropped += len(text.encode("utf-8", "replace"))
        return len(text)


class _RunBytes:
    def __init__(self, stream: _RunStream) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        pass


class _RunStream:
    """A callback's own `sys.stdout` / `sys.stderr`: closing it ends only this run's stream."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, capture: _Capture, name: str) -> None:
        self._capture = capture
        self.name = name
        self.closed = False
        self.buffer = _RunBytes(self)

    def write(self, text: str) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return self._capture.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def close(self) -> None:
        self.closed = True

    def detach(self) -> Any:
        self.closed = True
        return self.buffer

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def __enter__(self) -> _RunStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_capture: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "qbcallbacks_capture", default=None)


class _ContextStream:
    """A running callback's own stream inside a callback, the wrapped stream elsewhere."""

    def __init__(self, inner: Any, index: int) -> None:
        self._inner = inner
        self._index = index

    def _target(self) -> Any:
        capture = _capture.get()
        return self._inner if capture is None else capture.streams[self._index]

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def close(self) -> None:
        self._target().close()

    def __getattr__(self, name: str) -> Any:
        if name == "fileno":  # descriptors are the process's; see the module doc
            return self._inner.fileno
        return getattr(self._target(), name)


def _ensure_streams() -> tuple[Any, Any]:
    """Wrap the host's streams (once, and again if the host replaced them); the proxies."""
    if type(sys.stdout) is not _ContextStream:
        sys.stdout = _ContextStream(sys.stdout, 0)
    if type(sys.stderr) is not _ContextStream:
        sys.stderr = _ContextStream(sys.stderr, 1)
    return sys.stdout, sys.stderr


def _fd_identity(fd: int) -> tuple[int, int] | None:
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class _StdFds:
    """Copies of descriptors 0-2, put back after a callback closed or reopened them."""

    def __init__(self) -> None:
        self.saved: list[tuple[int, int, tuple[int, int]]] = []
        for fd in (0, 1, 2):
            ident = _fd_identity(fd)
            if ident is not None:
                self.saved.append((fd, os.dup(fd), ident))

    def restore(self) -> None:
        for fd, copy, ident in self.saved:
            if _fd_identity(fd) != ident:
                os.dup2(copy, fd)

    def close(self) -> None:
        for _, copy, _ in self.saved:
            os.close(copy)
        self.saved = []


_real_import = builtins.__import__


def _import(name: str, globals: Any = None, locals: Any = None,
            fromlist: Any = (), level: int = 0) -> ModuleType:
    """`import qb` in a callback gets our module without touching `sys.modules`."""
    if name == "qb" and level == 0:
        return qbmodule
    return _real_import(name, globals, locals, fromlist, level)


#: The builtins callbacks see: the real ones, with `qb` importable.
_SCRIPT_BUILTINS: dict[str, Any] = {**vars(builtins), "__import__": _import}


class _Job:
    __slots__ = ("done", "fn", "result")

    def __init__(self, fn: Callable[[], RunResult]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: RunResult | None = None


class _Lane:
    """A reusable thread that runs one callback at a time."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.retired = False
        self.thread = threading.Thread(target=self._loop, name="qbcallbacks-inprocess",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.retired:
            try:
                job = self.jobs.get()
                if job is None:
                    return
                try:
                    job.result = job.fn()
                except BaseException as exc:  # an interruption landing in our own code
                    job.result = RunResult(status="error", error=describe_exception(exc))
                job.done.set()
            except CallbackInterrupted:
                continue  # arrived after the callback ended; the lane checks `retired`

    def interrupt(self) -> None:
        ident = self.thread.ident
        if ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(CallbackInterrupted))


class InProcessRunner:
    """Runs Python callbacks on lanes of this process, with cached compiled code."""

    def __init__(self, max_idle: int) -> None:
        self._max_idle = max_idle
        self._idle: list[_Lane] = []
        self._abandoned: list[_Lane] = []
        self._lock = threading.Lock()
        self._files: ProgramCache[CodeType] = ProgramCache(_compile, max_entries=_CACHE_SIZE)
        self._inline: dict[str, CodeType] = {}
        self._std_fds = _StdFds()

    @property
    def stuck_threads(self) -> int:
        """Threads of timed-out callbacks that are still running."""
        with self._lock:
            self._abandoned = [lane for lane in self._abandoned if lane.thread.is_alive()]
            return len(self._abandoned)

    def run(self, invocation: Invocation, supervisor: Supervisor, cap: int) -> RunResult:
        streams = _ensure_streams()
        start = time.monotonic()
        job = _Job(lambda: self._execute(invocation, supervisor, cap, start))
        with self._lock:
            lane = self._idle.pop() if self._idle else None
        if lane is None:
            lane = _Lane()
        lane.jobs.put(job)
        finished = job.done.wait(invocation.timeout)
        sys.stdout, sys.stderr = streams  # a callback may have replaced them
        self._std_fds.restore()
        if finished:
            self._give_back(lane)
            assert job.result is not None
            return job.result
        lane.retired = True
        lane.interrupt()
        with self._lock:
            self._abandoned.append(lane)
        return RunResult(status="timeout", duration=time.monotonic() - start,
                         error=f"callback ran longer than {invocation.timeout:g}s; in-process "
                               "mode cannot kill it: it was interrupted, and keeps running in "
                               "the background if it ignores that")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for lane in idle:
            lane.jobs.put(None)
        self._std_fds.close()

    def _give_back(self, lane: _Lane) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(lane)
                return
        lane.jobs.put(None)

    def _code(self, invocation: Invocation) -> CodeType:
        if invocation.code is not None:
            code = self._inline.get(invocation.code)
            if code is None:
                code = compile(invocation.code, invocation.callback, "exec", dont_inherit=True)
                with self._lock:
                    if len(self._inline) >= _CACHE_SIZE:
                        self._inline.clear()
                    self._inline[invocation.code] = code
            return code
        assert invocation.path is not None
        path = str(invocation.path)
        return self._files.get_file(path, default_limits().max_script_bytes)

    def _execute(self, invocation: Invocation, supervisor: Supervisor, cap: int,
                 start: float) -> RunResult:
        capture = _Capture(cap)
        capture_token = _capture.set(capture)
        limits = default_limits()
        scope = qbmodule.Scope(invocation.job_id, invocation.work_name, invocation.subjob_id,
                               invocation.event.format(), _caller(supervisor),
                               limits.max_qb_args, limits.max_qb_arg_size)
        scope_token = qbmodule.current.set(scope)
        outcome: dict[str, Any] = {"status": "ok", "exit_code": 0}
        try:
            name = invocation.source_name
            env = {"__name__": "__main__", "__file__": name, "__builtins__": _SCRIPT_BUILTINS,
                   "qb": qbmodule}
            try:
                code = self._code(invocation)
            except OSError as exc:
                raise Unreadable(f"cannot read the script {name}: {exc.strerror}") from None
            except ScriptRefused as exc:
                raise Unreadable(f"refused the script {name}: {exc}") from None
            exec(code, env)
        except SystemExit as exc:
            outcome = exit_outcome(exc.code)
        except CallbackInterrupted:
            outcome = {"status": "timeout", "error": "interrupted at its timeout"}
        except BaseException as exc:
            outcome = {"status": "error", "exit_code": 1, "error": describe_exception(exc)}
        finally:
            scope.call = _over
            qbmodule.current.reset(scope_token)
            _capture.reset(capture_token)
        return RunResult(output="".join(capture.parts), output_dropped=capture.dropped,
                         duration=time.monotonic() - start, **outcome)


def _compile(path: str, source: bytes | str) -> CodeType:
    return compile(source, path, "exec", dont_inherit=True)


def _caller(supervisor: Supervisor) -> Callable[[str, list[Any]], Any]:
    def call(fn: str, args: list[Any]) -> Any:
        try:
            return answer(supervisor, fn, args)
        except HostError as exc:
            raise qbmodule.QbError(str(exc)) from None
        except Exception as exc:  # the supervisor's own fault: logged, seen as a qb error
            log.exception("supervisor failed answering qb.%s", fn)
            raise qbmodule.QbError(f"the supervisor failed: {type(exc).__name__}: {exc}") from None

    return call


def _over(fn: str, args: list[Any]) -> Any:
    raise qbmodule.QbError("this callback is over; qb cannot be used any more")
