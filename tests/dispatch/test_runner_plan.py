"""A firing's invocation is built without validation; it must equal the validated one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from qbcallbacks.audit.records import PendingFiring
from qbcallbacks.dispatch.runner import plan
from qbcallbacks.dispatch.settings import DispatcherSettings
from qbcallbacks.model.events import Event
from qbcallbacks.runtimes.api import Invocation

names = st.sampled_from(["mail.qcb", "check.pl", "a b.py", "job:7#0", "x" * 200])
events = st.builds(Event, name=st.sampled_from(["done", "failed", "complete"]),
                   type=st.sampled_from(["job", "work", "subjob"]),
                   job=st.integers(1, 2**31), extra=st.none() | st.sampled_from(["7", "f1"]))


@given(callback=names, code=st.none() | st.text(max_size=20), event=events,
       log_dir=st.none() | st.sampled_from(["/var/log/qb", "logs"]),
       timeout=st.floats(0.01, 1e6), own=st.none() | st.floats(0.01, 1e6))
def test_plan_equals_the_validated_invocation(callback: str, code: str | None, event: Event,
                                              log_dir: str | None, timeout: float,
                                              own: float | None) -> None:
    firing = PendingFiring(event_seq=1, ordinal=0, event=event, job=event.job,
                           callback=callback, directory="/site/callbacks", trigger="done-job-self",
                           language="qcb", code=code)
    settings = DispatcherSettings(timeout=timeout, log_dir=log_dir,
                                  rule_timeouts={} if own is None else {callback: own})
    built = plan(firing, settings)
    validated = Invocation.model_validate(built.model_dump())
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.timeout == (timeout if own is None else own)
    assert (built.path is None) == (code is not None)
    assert built.work_name == (event.extra if event.type == "work" else None)
