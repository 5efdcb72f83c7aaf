"""The service's methods, whatever carries them (a socket line, an HTTP batch).

`event` is the hot path: check the `seq`, ask the producer book whether the event is new, read
it as a stream line, journal it through the dispatcher with the producer's identity as its
key, ack. The verdict and the journaling happen under one lock, so two copies of one event
arriving at once still journal it once. A checkpoint thread writes the book to the trail.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..audit.journal import Position
from ..audit.producers import ProducerRow
from ..audit.store import AuditError
from ..dispatch.dispatcher import (
    BackPressureError,
    Dispatcher,
    DispatcherClosed,
    DispatcherUnavailable,
)
from ..errors import GlobalCallbackError, QbCallbacksError
from ..model.events import Event, Job
from ..stream import EventLineError, EventReader
from .messages import (
    BACK_PRESSURE,
    CONFLICT,
    DRAINING,
    INVALID_PARAMS,
    MAX_SEQ,
    METHOD_NOT_FOUND,
    OUT_OF_ORDER,
    REFUSED,
    UNAVAILABLE,
)
from .metrics import Metrics
from .producers import WINDOW, ProducerBook, Verdict, digest
from .proxy import SupervisorProxy
from .quick import quick_event

#: Seconds between two checkpoints of the producer book.
CHECKPOINT_EVERY = 1.0
_RETRY: dict[type[Exception], int] = {
    BackPressureError: BACK_PRESSURE, DispatcherUnavailable: UNAVAILABLE,
    DispatcherClosed: DRAINING}


class RpcFault(QbCallbacksError):
    """A request that is answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def error(self) -> dict[str, Any]:
        """The JSON-RPC error object."""
        found: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            found["data"] = self.data
        return found


class Service:
    """A dispatcher fed by remote producers."""

    def __init__(self, dispatcher: Dispatcher, proxy: SupervisorProxy, metrics: Metrics,
                 drain_timeout: float | None = None,
                 stopped: threading.Event | None = None,
                 book: ProducerBook | None = None, replayed_to: Position | None = None) -> None:
        self.dispatcher = dispatcher
        self.proxy = proxy
        self.metrics = metrics
        self.drain_timeout = drain_timeout
        self.reader = EventReader()
        self.draining = False
        self.book = book if book is not None else ProducerBook()
        #: Set to stop serving (by a `drain` request, or a signal caught before the start).
        self.stopped = stopped if stopped is not None else threading.Event()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._drained: bool | None = None
        self._replayed_to = replayed_to or Position(0, 0)
        self._supervisors: dict[str, object] = {}
        metrics.watch(lambda: dispatcher.queue_depth, lambda: proxy.connected)
        self._tally = metrics.events  # added to under `_lock`
        self._saver = threading.Thread(target=self._checkpoints, name="qbcallbacks-producers",
                                       daemon=True)
        self._saver.start()

    def call(self, method: str, params: dict[str, Any], producer: str | None = None,
             epoch: int = 0) -> Any:
        """Answer one request (raises `RpcFault` for an error answer)."""
        if method == "event":
            if producer is None:
                raise RpcFault(INVALID_PARAMS, "events come from a producer (see hello)")
            return self.event(params, producer, epoch)
        if method == "health":
            return self.health(producer, epoch)
        if method == "metrics":
            return {"text": self.metrics.text().decode()}
        if method == "reload":
            return self.reload(params)
        if method == "global":
            return self.global_callbacks(params)
        if method == "drain":
            timeout = params.get("timeout", self.drain_timeout)
            if timeout is not None and (isinstance(timeout, bool)
                                        or not isinstance(timeout, int | float) or timeout < 0):
                raise RpcFault(INVALID_PARAMS, "'timeout' must be a number of seconds")
            return {"drained": self.drain(timeout)}
        raise RpcFault(METHOD_NOT_FOUND, f"unknown method {method!r}; the service knows "
                       "hello, event, attach, reload, health, metrics, global and drain")

    # -- producers -------------------------------------------------------------------------

    def claim_supervisor(self, producer: str, peer: object) -> bool:
        """`peer` becomes the supervisor of `producer`, unless one is already connected."""
        with self._lock:
            if self._supervisors.get(producer, peer) is not peer:
                return False
            self._supervisors[producer] = peer
            return True

    def release_supervisor(self, producer: str, peer: object) -> None:
        with self._lock:
            if self._supervisors.get(producer) is peer:
                del self._supervisors[producer]

    def greet(self, producer: str, epoch: int) -> int:
        """`last_seq` for a producer saying hello (raises `RpcFault` for a replaced epoch)."""
        with self._lock:
            why = self.book.admit(producer, epoch)
            if why is not None:
                raise RpcFault(CONFLICT, why)
            return self.book.last_seq(producer, epoch)

    def event(self, params: dict[str, Any], producer: str, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        quick = quick_event(params)
        if quick is None:
            return self._event(params, producer, epoch, started)
        with self._lock:
            return self._one(*quick, producer, epoch, started)

    def events(self, batch: Sequence[dict[str, Any]], producer: str,
               epoch: int) -> list[dict[str, Any] | Exception]:
        """`event` for the params of each request of one read, in order: each answer, or the
        error that answers it. The usual ones in a row are judged under one hold of the lock
        and journaled together; a retry of a seq in the same read is judged after the ones
        before it are journaled, so it is acked as the duplicate it is."""
        started = time.perf_counter()
        out: list[Any] = []
        run: list[tuple[int, Event, str]] = []
        for params in batch:
            quick = quick_event(params)
            if quick is not None:
                run.append(quick)
                continue
            if run:
                self._run(run, producer, epoch, started, out)
                run = []
            try:
                out.append(self._event(params, producer, epoch, started))
            except Exception as exc:  # answered by the caller, as `event` would raise it
                out.append(exc)
        if run:
            self._run(run, producer, epoch, started, out)
        return out

    def _run(self, run: list[tuple[int, Event, str]], producer: str, epoch: int,
             started: float, out: list[Any]) -> None:
        """Judge and journal usual events in a row, their answers appended to `out`."""
        new: list[tuple[int, int, Event, str]] = []  # judged new: answer's index, seq, ...
        with self._lock:
            for seq, event, value in run:
                if new and (seq <= new[-1][1] or self.book.owed(producer, epoch) is not None):
                    self._journal_many(new, producer, epoch, started, out)
                out.append(None)
                verdict, why = self.book.judge(producer, epoch, seq, value)
                if verdict != Verdict.NEW or self.draining:
                    try:
                        out[-1] = self._not_new(verdict, why, producer, epoch, seq)
                    except RpcFault as fault:
                        out[-1] = fault
                else:
                    new.append((len(out) - 1, seq, event, value))
            if new:
                self._journal_many(new, producer, epoch, started, out)

    def _journal_many(self, new: list[tuple[int, int, Event, str]], producer: str, epoch: int,
                      started: float, out: list[Any]) -> None:
        """Journal events judged new (under the lock) and set their answers; `new` is
        emptied. After a refusal the rest are judged again one at a time, as if sent after
        it (they are owed)."""
        taken, exc = self.dispatcher.emit_many(
            [(event, self.reader.attached(event), [producer, epoch, seq, value])
             for _, seq, event, value in new])
        for index, seq, _, value in new[:taken]:
            self.book.taken(producer, epoch, seq, value)
            out[index] = {"ack": seq}
        self._tally.acked(time.perf_counter() - started, taken)
        journal = self.dispatcher.journal
        if taken and journal.keep_from is None:
            journal.keep_from = Position(journal.key_end.segment, 0)
        if exc is not None:
            index, seq = new[taken][:2]
            out[index] = exc
            code = _RETRY.get(type(exc))
            if code is not None:
                self._tally.count("rejected")
                self.book.refused(producer, epoch, seq)
                out[index] = RpcFault(code, str(exc))
            for index, seq, event, value in new[taken + 1:]:
                try:
                    out[index] = self._one(seq, event, value, producer, epoch, started)
                except Exception as again:  # answered by the caller
                    out[index] = again
        new.clear()

    def _one(self, seq: int, event: Event, value: str, producer: str, epoch: int,
             started: float) -> dict[str, Any]:
        """One usual event judged and journaled (under the lock)."""
        verdict, why = self.book.judge(producer, epoch, seq, value)
        if verdict != Verdict.NEW or self.draining:
            return self._not_new(verdict, why, producer, epoch, seq)
        self._journal(event, self.reader.attached(event), producer, epoch, seq, value)
        self._tally.acked(time.perf_counter() - started)
        return {"ack": seq}

    def _event(self, params: dict[str, Any], producer: str, epoch: int,
               started: float) -> dict[str, Any]:
        """`event` the long way: any params the short way does not take."""
        seq = params.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            with self._lock:
                self._tally.count("rejected")
            raise RpcFault(INVALID_PARAMS, f"'seq' must be a whole number from 1 to {MAX_SEQ}, "
                           f"not {seq!r}")
        line = {k: v for k, v in params.items() if k != "seq"}
        value = digest(line)
        with self._lock:
            verdict, why = self.book.judge(producer, epoch, seq, value)
            if verdict != Verdict.NEW or self.draining:
                return self._not_new(verdict, why, producer, epoch, seq)
            try:
                event, job = self.reader.read(line)
            except EventLineError as exc:
                self._tally.count("rejected")
                raise RpcFault(INVALID_PARAMS, str(exc)) from None
            self._journal(event, job, producer, epoch, seq, value)
            self._tally.acked(time.perf_counter() - started)
        return {"ack": seq}

    def _not_new(self, verdict: str, why: str, producer: str, epoch: int,
                 seq: int) -> dict[str, Any]:
        """The answer to an event that is not journaled (under the lock): a duplicate's ack,
        else the refusal raised."""
        if verdict == Verdict.DUPLICATE:
            self._tally.count("duplicate")
            return {"ack": seq, "duplicate": True}
        self._tally.count("rejected")
        if verdict == Verdict.CONFLICT:
            raise RpcFault(CONFLICT, why)
        if verdict == Verdict.OWED:
            raise RpcFault(OUT_OF_ORDER, why, {"resend_from": self.book.owed(producer, epoch)})
        self.book.refused(producer, epoch, seq)
        raise RpcFault(DRAINING, "the service is draining; the event was not taken")

    def _journal(self, event: Event, job: Job | None, producer: str, epoch: int, seq: int,
                 value: str) -> None:
        """Journal one new event (under the lock)."""
        try:
            self.dispatcher.emit(event, job, key=[producer, epoch, seq, value])
        except (DispatcherUnavailable, BackPressureError, DispatcherClosed) as exc:
            self._tally.count("rejected")
            self.book.refused(producer, epoch, seq)
            raise RpcFault(_RETRY[type(exc)], str(exc)) from None
        self.book.taken(producer, epoch, seq, value)
        journal = self.dispatcher.journal
        if journal.keep_from is None:
            journal.keep_from = Position(journal.key_end.segment, 0)

    def _checkpoints(self) -> None:
        while not self.stopped.wait(CHECKPOINT_EVERY):
            self.checkpoint()

    def checkpoint(self) -> bool:
        """Write what the book took since the last checkpoint to the trail; False if the trail
        could not be written (it is tried again next time; the journal keeps it meanwhile)."""
        journal = self.dispatcher.journal
        with self._lock:
            rows, self.book.unsaved = self.book.unsaved, []
            mark = max(journal.key_end, self._replayed_to)
        if not rows:
            return True
        try:
            self.dispatcher.audit.save_producers(_newest(rows), mark, WINDOW)
        except AuditError:
            with self._lock:
                self.book.unsaved[:0] = rows
            return False
        journal.keep_from = mark
        return True

    # -- the rest --------------------------------------------------------------------------

    def health(self, producer: str | None = None, epoch: int = 0) -> dict[str, Any]:
        h = self.dispatcher.health
        ok, problem, since = h.ok, h.problem, h.since
        journal = self.dispatcher.journal
        if ok and journal.problem is not None:
            ok, problem, since = False, journal.problem, journal.problem_since
        with self._lock:
            producers = self.book.summary()
            last = (self.book.last_seq(producer, epoch) if producer is not None else
                    max((p["last_seq"] for p in producers.values()), default=0))
        return {"ok": ok and not self.draining,
                "problem": "draining" if self.draining and ok else problem,
                "since": since, "supervisor": self.proxy.connected,
                "draining": self.draining, "queued": self.dispatcher.queue_depth,
                "last_seq": last, "producers": producers}

    def reload(self, params: dict[str, Any]) -> dict[str, Any]:
        dirs = params.get("directories")
        if dirs is not None and (not isinstance(dirs, list)
                                 or not all(isinstance(d, str) for d in dirs)):
            raise RpcFault(INVALID_PARAMS, "'directories' must be a list of directories")
        if self.draining:
            raise RpcFault(DRAINING, "the service is draining; nothing was reloaded")
        found = self.dispatcher.reload(dirs)
        return {"diagnostics": [d.to_json() for d in found]}

    def global_callbacks(self, params: dict[str, Any]) -> dict[str, Any]:
        """The `global` method: add, list or remove the dispatcher's global callbacks."""
        op = params.get("op")
        try:
            if op == "list":
                return {"globals": [g.model_dump(exclude={"name"}) for g in
                                    self.dispatcher.globals()]}
            if op == "add":
                args = [params.get(k) for k in ("trigger", "language", "code")]
                if not all(isinstance(a, str) for a in args):
                    raise RpcFault(INVALID_PARAMS, "add needs 'trigger', 'language' and "
                                   "'code' as strings")
                trigger, language, code = (str(a) for a in args)
                return {"id": self.dispatcher.submit_global(trigger, language=language,
                                                            code=code)}
            if op == "remove":
                gid = params.get("id")
                if isinstance(gid, bool) or not isinstance(gid, int):
                    raise RpcFault(INVALID_PARAMS, "remove needs the 'id' of a global callback")
                self.dispatcher.remove_global(gid)
                return {"removed": gid}
        except GlobalCallbackError as exc:
            raise RpcFault(REFUSED, str(exc)) from None
        raise RpcFault(INVALID_PARAMS, f"'op' must be add, list or remove, not {op!r}")

    def drain(self, timeout: float | None = None) -> bool:
        """Stop taking events, checkpoint the producers, run what was accepted, close the
        trail; once (later callers get the first outcome). Then `stopped` is set."""
        with self._drain_lock:
            if self._drained is None:
                with self._lock:
                    self.draining = True
                with contextlib.suppress(AuditError):
                    self.checkpoint()
                self._drained = self.dispatcher.close(drain=True, timeout=timeout)
            return self._drained


def _newest(rows: list[ProducerRow]) -> list[ProducerRow]:
    """Each producer's newest `WINDOW` rows (older ones the table would drop at once)."""
    kept: dict[str, int] = {}
    out: list[ProducerRow] = []
    for row in reversed(rows):
        if kept.get(row.producer, 0) < WINDOW:
            kept[row.producer] = kept.get(row.producer, 0) + 1
            out.append(row)
    out.reverse()
    return out
