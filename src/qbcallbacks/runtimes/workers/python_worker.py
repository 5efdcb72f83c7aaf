"""An isolated Python worker: runs callbacks one at a time for the host, over two pipes.

Started by the host as `python -I python_worker.py <qb module> <outcome module> <read fd>
<write fd>`. It imports nothing from qbcallbacks: the `qb` module and the shared wording of
exits and tracebacks are loaded by path, so it starts fast and the host never imports it. The
protocol is described in `qbcallbacks.runtimes.pool`.

A script may do anything to this process: `sys.exit` and exceptions end only the callback;
`os._exit`, a segfault or an endless loop end the worker, and the host replaces it.

Every run starts from a clean slate (:class:`Slate`): a fresh `qb` module and fresh globals;
after the run, stdout/stderr and descriptors 0-2, `os.environ`, the umask, `sys.path`, modules
the script imported, builtins, signal handlers and mask, timers, resource limits and the trace
hooks are put back as they were when the worker started. A run that leaves something that
cannot be put back (a thread still running, a descriptor still open, a changed user id or
priority) ends with the worker: it says so in its `done` message and exits, and the host
starts a fresh one.
"""

from __future__ import annotations

import builtins
import gc
import importlib.util
import json
import os
import resource
import signal
import stat
import sys
import threading
from types import CodeType, ModuleType
from typing import Any

# The C module behind `signal`: reading handlers there skips the enum wrapping (much faster).
_signal: Any = importlib.import_module("_signal")


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


#: Resource limits a callback may lower (and, not being root, not raise again).
#: The most a script may hold unless the host says otherwise (its `max_script_bytes`), and
#: the scripts whose compiled code a worker keeps.
_MAX_SCRIPT_BYTES = 4 << 20
_CACHE_ENTRIES = 256
_LIMITS = (resource.RLIMIT_NOFILE, resource.RLIMIT_CPU, resource.RLIMIT_AS,
           resource.RLIMIT_FSIZE, resource.RLIMIT_NPROC, resource.RLIMIT_STACK)


#: Modules whose namespaces are put back after a run (a script may monkeypatch them; one that
#: patches anything else changes only what later scripts import from it in this worker, until
#: it is recycled).
_GUARDED_MODULES = ("os", "posixpath", "json", "io", "time", "signal", "threading", "builtins",
                    "subprocess", "shutil", "socket", "smtplib", "sqlite3", "tempfile")


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:  # no /proc: descriptors are not compared
        return set()


class Slate:
    """What a run may change in this process, as it was before the first run."""

    def __init__(self, streams: tuple[Any, Any]) -> None:
        self.streams = streams
        self.stdin = sys.stdin
        # Copies of descriptors 0-2 (close-on-exec), put back with dup2 after every run.
        self.std_fds = tuple(os.dup(fd) for fd in (0, 1, 2))
        self.environ = dict(os.environ)
        # The encoded mapping behind os.environ: comparing it costs nothing, decoding does.
        self.environ_data = dict(getattr(os.environ, "_data", {}))
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.path = list(sys.path)
        self.modules = set(sys.modules)
        self.builtins = dict(vars(builtins))
        self.namespaces: dict[str, tuple[ModuleType, dict[str, Any]]] = {
            name: (sys.modules[name], dict(vars(sys.modules[name])))
            for name in _GUARDED_MODULES if name in sys.modules and name != "builtins"}
        self.ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
        self.recursion = sys.getrecursionlimit()
        self.hooks = (sys.excepthook, sys.displayhook, sys.unraisablehook)
        self.signals: dict[int, Any] = {}
        for sig in signal.valid_signals():
            try:
                self.signals[int(sig)] = _signal.getsignal(sig)
            except (OSError, ValueError):
                continue
        self.sigmask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        self.limits = {r: resource.getrlimit(r) for r in _LIMITS}
        self.priority = os.getpriority(os.PRIO_PROCESS, 0)
        self.fds: set[int] = set()

    def seal(self) -> None:
        """Record the descriptors the worker itself holds (after its own set-up)."""
        self.fds = _open_fds()

    def restore(self) -> str | None:
        """Put everything back; the reason the worker must be replaced, or None."""
        for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(timer, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, self.sigmask)
        getsignal = _signal.getsignal
        for sig, handler in self.signals.items():
            if handler is not None and getsignal(sig) != handler:
                try:
                    _signal.signal(sig, handler)
                except (OSError, ValueError, TypeError):
                    return f"signal {sig} could not be reset"
        for fd, saved in zip((0, 1, 2), self.std_fds, strict=True):
            os.dup2(saved, fd)
        sys.stdout, sys.stderr = self.streams
        sys.stdin = self.stdin
        sys.settrace(None)
        sys.setprofile(None)
        sys.excepthook, sys.displayhook, sys.unraisablehook = self.hooks
        sys.setrecursionlimit(self.recursion)
        os.umask(self.umask)
        data = getattr(os.environ, "_data", None)
        changed = data != self.environ_data if data is not None else os.environ != self.environ
        if changed:
            os.environ.clear()
            os.environ.update(self.environ)
        sys.path[:] = self.path
        for name in set(sys.modules) - self.modules:
            del sys.modules[name]
        guarded: list[tuple[ModuleType, dict[str, Any]]] = [(builtins, self.builtins),
                                                            *self.namespaces.values()]
        for module, original in guarded:
            space = vars(module)
            if space != original:
                for name in set(space) - set(original):
                    del space[name]
                space.update(original)
        if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != self.ids:
            return "the callback changed the worker's user or group"
        for res, limit in self.limits.items():
            if resource.getrlimit(res) != limit:
                try:
                    resource.setrlimit(res, limit)
                except (OSError, ValueError):
                    return "the callback lowered a resource limit for good"
        if os.getpriority(os.PRIO_PROCESS, 0) != self.priority:
            return "the callback changed the worker's priority"
        if threading.active_count() > 1:
            return "the callback left a thread running"
        if self.fds and _open_fds() - self.fds:
            gc.collect()  # files held by reference cycles in the script's globals
            if _open_fds() - self.fds:
                return "the callback left a file descriptor open"
        return None


class Worker:
    def __init__(self, qb_path: str, outcome: ModuleType, rfd: int, wfd: int) -> None:
        self.qb_code = _compile_file(qb_path)
        self.qb_path = qb_path
        self.outcome = outcome
        self.input = os.fdopen(rfd, "rb")
        self.wfd = wfd
        self.budget = _Budget()
        self.run_id = 0
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[bytes, CodeType]] = {}
        streams = (_CappedText(self.budget, 1), _CappedText(self.budget, 2))
        sys.stdout, sys.stderr = streams
        # Built before the baseline is taken, so what the qb module imports belongs to it.
        self.next_qb: ModuleType | None = self.build_qb()
        self.slate = Slate(streams)
        self.slate.seal()

    def build_qb(self) -> ModuleType:
        """A new `qb` module: nothing a previous callback did to one survives in the next."""
        module = ModuleType("qb")
        module.__file__ = self.qb_path
        exec(self.qb_code, vars(module))
        return module

    def fresh_qb(self) -> ModuleType:
        """The run's own `qb` module (built while the worker was idle), as `import qb` sees it."""
        module, self.next_qb = self.next_qb or self.build_qb(), None
        sys.modules["qb"] = module
        return module

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
                done = self.run(message)
                self.send(done)
                if done.get("recycle"):
                    os._exit(0)  # leftover threads must not outlive the run's worker
                self.next_qb = self.build_qb()  # off the next run's critical path

    def call_for(self, qb: ModuleType, run_id: int) -> Any:
        def call(fn: str, args: list[Any]) -> Any:
            if run_id != self.run_id:
                raise qb.QbError("this callback is over; qb cannot be used any more")
            request = {"op": "call", "fn": fn, "args": args}
            try:  # the bounds were checked by `qb` before the call got here
                data = json.dumps(request).encode("utf-8") + b"\n"
            except (TypeError, ValueError) as exc:
                raise qb.QbError(f"{fn}: arguments must be plain data: {exc}") from None
            if len(data) > qb.MAX_MESSAGE_BYTES:
                raise qb.QbError(f"{fn}: the call is too large to send ({len(data)} bytes; at "
                                 f"most {qb.MAX_MESSAGE_BYTES})")
            with self.lock:
                _write_all(self.wfd, data)
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
        source = _read_script(path, int(message.get("max_bytes", _MAX_SCRIPT_BYTES)))
        hit = self.cache.get(path)
        if hit is not None and hit[0] == source:  # the very bytes it was compiled from
            return hit[1]
        code = compile(source, path, "exec", dont_inherit=True)
        if len(self.cache) >= _CACHE_ENTRIES:
            self.cache.clear()
        self.cache[path] = (source, code)
        return code

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        self.run_id += 1
        self.budget.reset(int(message.get("cap", 65536)))
        outcome = self.outcome
        qb = self.fresh_qb()
        scope = qb.Scope(int(message["jobid"]), message.get("workid"),
                         int(message.get("subid", -1)), str(message.get("event", "")),
                         self.call_for(qb, self.run_id),
                         int(message.get("max_args", qb.MAX_CALL_ARGS)),
                         int(message.get("max_arg_size", qb.MAX_ARG_SIZE)))
        token = qb.current.set(scope)
        done: dict[str, Any] = {"op": "done", "status": "ok", "exit_code": 0, "error": None}
        try:
            os.chdir(str(message["cwd"]))
            name = str(message["name"])
            sys.argv = [name]
            try:
                code = self.code_of(message)
            except OSError as exc:
                raise outcome.Unreadable(
                    f"cannot read the script {name}: {exc.strerror}") from None
            env = {"__name__": "__main__", "__file__": name, "__builtins__": builtins, "qb": qb}
            exec(code, env)
        except SystemExit as exc:
            done.update(outcome.exit_outcome(exc.code))
        except BaseException as exc:
            done.update(status="error", exit_code=1, error=outcome.describe_exception(exc))
        finally:
            self.run_id += 1  # calls from threads the script left behind now fail
            qb.current.reset(token)
            env = {}
        try:
            why = self.slate.restore()
        except Exception as exc:  # anything that cannot be put back costs the worker
            why = f"the worker could not be reset: {exc!r}"
        if why is not None:
            done["recycle"] = why
        done["dropped"] = self.budget.dropped
        return done


def _read_script(path: str, limit: int) -> bytes:
    """A script's bytes, read again at every run: its metadata cannot prove it unchanged (an
    edit in place within one timestamp tick keeps size and mtime). Opened without blocking and
    checked on the descriptor, so a FIFO put where the script was, or a huge file, is refused
    at once instead of hanging or filling the worker."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, f"{path} is not a regular file")
        if info.st_size > limit:
            raise OSError(0, f"{path} is {info.st_size} bytes, over the limit of {limit}")
        return fh.read(info.st_size + 1)  # never more than the limit, even if it grew


def _compile_file(path: str) -> CodeType:
    with open(path, "rb") as fh:
        return compile(fh.read(), path, "exec", dont_inherit=True)


def _load(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    qb_path, outcome_path, rfd, wfd = argv[1], argv[2], int(argv[3]), int(argv[4])
    Worker(qb_path, _load("qbcallbacks_outcome", outcome_path), rfd, wfd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
