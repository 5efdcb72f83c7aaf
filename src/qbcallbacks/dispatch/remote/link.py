"""A worker's line back to the dispatcher that sent it a run: requests over the broker.

Each worker process opens one connection and one exclusive reply queue of its own; a request
is a JSON message on the dispatcher's queue and waits for the answer with the same
correlation id, up to a deadline. A lost connection is dropped and opened again at the next
request, so a broker restart costs the requests in flight, never the worker.

`RemoteSupervisor` is the `Supervisor` the worker's runtimes are bound to: each method is a
`call` request, answered by the dispatcher's own supervisor within the run's deadline, so a
callback cannot tell whether it runs here or there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from ...model.supervisor import (
    HostError,
    JobAction,
    MailMessage,
    SubjobAction,
    WorkAction,
)
from .wire import Op, kombu

log = logging.getLogger("qbcallbacks.remote")


class LinkError(Exception):
    """The dispatcher did not answer (it is gone, or the broker is out of reach)."""


class DispatcherGone(LinkError):
    """The broker returned the request: the dispatcher's queue no longer exists."""


class Link:
    """Requests from this process to dispatchers; one at a time (a lock keeps it so)."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self._lock = threading.Lock()
        self._conn: Any = None
        self._reply_to = f"qbcallbacks.reply.{uuid.uuid4().hex}"
        self._answers: dict[str, dict[str, Any]] = {}
        self._returned: set[str] = set()

    def request(self, to: str, op: Op, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send `op` to the dispatcher queue `to` and wait up to `timeout` seconds for its
        answer; raises `LinkError` when none comes."""
        corr = uuid.uuid4().hex
        message = {**body, "op": op, "corr": corr, "reply_to": self._reply_to}
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            try:
                self._connect()
                self._publish(to, message)
                return self._wait(corr, deadline)
            except LinkError:  # DispatcherGone too: the connection is fine
                raise
            except Exception as exc:  # the broker failed: start afresh next time
                self._drop()
                raise LinkError(f"the broker failed: {exc}") from exc

    def send(self, to: str, op: Op, body: dict[str, Any]) -> None:
        """Send without waiting for an answer (from a process that cannot wait)."""
        with self._lock:
            try:
                self._connect()
                self._publish(to, {**body, "op": op, "corr": "", "reply_to": ""})
            except Exception as exc:
                self._drop()
                raise LinkError(f"the broker failed: {exc}") from exc

    def dispatcher_alive(self, queue: str) -> bool:
        """Whether the dispatcher owning `queue` still exists (its exclusive queue does);
        True when the broker cannot say, so that nothing is given up on a guess."""
        with self._lock:
            try:
                self._connect()
                channel = self._conn.channel()
            except Exception:
                self._drop()
                return True
            try:
                channel.queue_declare(queue=queue, passive=True)
            except Exception as exc:  # 404: gone; 405: there, owned by its dispatcher
                return getattr(exc, "code", None) != 404
            finally:
                try:
                    channel.close()
                except Exception:  # the broker closed it already after the error
                    log.debug("closing a probe channel failed", exc_info=True)
            return True

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> None:
        if self._conn is not None:
            return
        k = kombu()
        conn = k.Connection(self.broker, connect_timeout=10)
        conn.connect()
        queue = k.Queue(self._reply_to, exclusive=True, auto_delete=True, durable=False)
        consumer = k.Consumer(conn.default_channel, queues=[queue], no_ack=True,
                            accept=["json"], callbacks=[self._on_answer])
        consumer.consume()
        producer = k.Producer(conn.default_channel, on_return=self._on_return)
        self._conn, self._consumer, self._producer = conn, consumer, producer

    def _publish(self, to: str, message: dict[str, Any]) -> None:
        # mandatory: a request to a queue that is gone comes back at once (`DispatcherGone`)
        self._producer.publish(message, exchange="", routing_key=to, serializer="json",
                               delivery_mode=1, mandatory=True)

    def _wait(self, corr: str, deadline: float) -> dict[str, Any]:
        while corr not in self._answers:
            if corr in self._returned:
                self._returned.discard(corr)
                raise DispatcherGone("the dispatcher is gone (its queue no longer exists)")
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError("the dispatcher did not answer in time")
            try:
                self._conn.drain_events(timeout=min(left, 1.0))
            except TimeoutError:
                continue
        return self._answers.pop(corr)

    def _on_answer(self, body: Any, message: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("corr"), str):
            self._answers[body["corr"]] = body

    def _on_return(self, exception: Any, exchange: Any, routing_key: Any,
                   message: Any) -> None:
        try:
            corr = json.loads(message.body).get("corr")
        except (ValueError, AttributeError, TypeError):
            return
        if isinstance(corr, str) and corr:
            self._returned.add(corr)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._answers.clear()
        self._returned.clear()
        if conn is not None:
            try:
                conn.release()
            except Exception:  # already broken: nothing more to release
                log.debug("closing a broken broker connection failed", exc_info=True)


class RemoteSupervisor:
    """A `Supervisor` whose answers come from the dispatcher of the run in progress.

    `aim(calls, deadline)` is set before each run; a worker process runs one callback at a
    time, so one target is enough. A call with no answer by the deadline is a `HostError`
    in the script, like any refusal."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self._calls = ""
        self._deadline = 0.0

    def aim(self, calls: str, deadline: float) -> None:
        self._calls, self._deadline = calls, deadline

    def _call(self, method: str, args: list[Any]) -> Any:
        left = self._deadline - time.monotonic()
        if not self._calls or left <= 0:
            raise HostError(f"{method}: the run's deadline has passed")
        try:
            reply = self.link.request(self._calls, "call",
                                      {"method": method, "args": args}, left)
        except LinkError as exc:
            raise HostError(f"{method}: no answer from the supervisor ({exc})") from None
        if "error" in reply:
            if reply.get("host"):
                raise HostError(str(reply["error"]))
            raise RuntimeError(str(reply["error"]))
        return reply.get("value")

    def jobinfo(self, *args: Any) -> list[dict[str, Any]]:
        value = self._call("jobinfo", list(args))
        return list(value) if isinstance(value, list) else []

    def job_action(self, action: JobAction, job_id: int) -> bool:
        return bool(self._call("job_action", [action, job_id]))

    def work_action(self, action: WorkAction, job_id: int, work: str) -> bool:
        return bool(self._call("work_action", [action, job_id, work]))

    def subjob_action(self, action: SubjobAction, job_id: int, subjob: int) -> bool:
        return bool(self._call("subjob_action", [action, job_id, subjob]))

    def mail(self, message: MailMessage) -> None:
        self._call("mail", [message.model_dump(mode="json")])
