"""Hot reload: watch the callback directories and reload the ones that changed.

`watchfiles` (Rust `notify` underneath) reports changes in batches after a quiet period
(`debounce_ms`), so an editor that writes a file in several steps causes one reload, not
several. The watcher only decides *which* directories to reload; what a reload keeps (last good
rules, compound state) is the dispatcher's business.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

ReloadFn = Callable[[Sequence[str]], object]


class Watcher:
    """A thread that calls `reload(directories)` when files in those directories change."""

    def __init__(self, directories: Sequence[str], reload: ReloadFn, *,
                 debounce_ms: int = 200) -> None:
        self.directories = list(directories)
        self._reload = reload
        self._debounce = debounce_ms
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._roots = {d: os.path.realpath(d) for d in self.directories}

    def start(self) -> Watcher:
        existing = [r for r in self._roots.values() if Path(r).is_dir()]
        if not existing:
            log.warning("no callback directory exists; nothing to watch")
            self._ready.set()
            return self
        self._thread = threading.Thread(target=self._loop, args=(existing,),
                                        name="qbcallbacks-watch", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def directories_of(self, paths: Sequence[str]) -> list[str]:
        """The callback directories (as configured) that hold any of `paths`, in path order."""
        touched: list[str] = []
        for directory, root in self._roots.items():
            for p in paths:
                real = os.path.realpath(p)
                if real == root or os.path.dirname(real) == root:
                    touched.append(directory)
                    break
        return touched

    def _loop(self, roots: list[str]) -> None:
        from watchfiles import watch  # imported here: `check` and `history` never need it

        try:
            # With yield_on_timeout the first (empty) batch comes once the OS watch is in
            # place: `start` returns only then, so a change made right after it is seen.
            for changes in watch(*roots, stop_event=self._stop, debounce=self._debounce,
                                 step=20, recursive=False, raise_interrupt=False,
                                 rust_timeout=100, yield_on_timeout=True):
                self._ready.set()
                touched = self.directories_of([path for _, path in changes])
                if touched:
                    try:
                        self._reload(touched)
                    except Exception:  # a failed reload is reported, watching goes on
                        log.exception("reloading %s failed", ", ".join(touched))
        except Exception:
            log.exception("the callback directory watcher stopped")
        finally:
            self._ready.set()
