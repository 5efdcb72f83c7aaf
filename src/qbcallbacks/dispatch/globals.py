"""Global callbacks in a dispatcher: submitted, kept in the trail, matched, scheduled.

`GlobalBook` is what `Dispatcher.submit_global`, `remove_global` and `globals` use. A
submission is refused unless the site allows global callbacks
(`DispatcherSettings(allow_global_callbacks=True)`, qb.conf `supervisor_global_callbacks =
true`), and when its trigger names a job relative to its own (it has none) or does not parse;
a refusal raises `GlobalCallbackError` with the reason and is kept in the trail. An accepted
one is kept in the trail (so the next start takes it again), matched after the universal and
job-specific callbacks of each event (`WithGlobals`), and its time atoms are scheduled by the
dispatcher's timer, once per instant.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import get_args

from ..audit.globals import GlobalTable
from ..audit.store import AuditError
from ..errors import GlobalCallbackError, QbCallbacksError
from ..lang import parse_qcb, parse_trigger
from ..matching.clock import Clock, to_qube
from ..matching.globals import GlobalMatcher, global_trigger_problem
from ..matching.matcher import Firing
from ..matching.owner import Audience
from ..model.events import Event, Job
from ..model.globals import GlobalCallback
from ..model.languages import JobCallbackLanguage
from ..model.rules import Rule
from ..runtimes.policy import GLOBALS_KEY
from .matchloop import MatchSource
from .settings import DispatcherSettings
from .timer import Timer

log = logging.getLogger("qbcallbacks.dispatch")
_LANGUAGES: tuple[str, ...] = get_args(JobCallbackLanguage)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def submission_problem(trigger: str, language: str, code: str) -> tuple[str, str | None]:
    """(the canonical trigger, or the text as given; why it cannot be a global callback)."""
    try:
        parsed = parse_trigger(trigger)
    except QbCallbacksError as exc:
        return trigger, f"the trigger {trigger!r} is not valid: {_first_line(exc)}"
    canonical = parsed.format()
    if language not in _LANGUAGES:
        return canonical, (f"unknown language {language!r}; a global callback is in "
                           f"{', '.join(_LANGUAGES)}")
    if not code.strip():
        return canonical, "a global callback needs code to run"
    if language == "qube":
        found = parse_qcb(code, "global callback")
        if found.program is None:
            errors = [d.message for d in found.diagnostics if d.severity == "error"]
            return canonical, f"the qcb code is not valid: {errors[0] if errors else '?'}"
    return canonical, global_trigger_problem(parsed)


def refusal_of(trigger: str, language: str, code: str, *,
               allowed: bool) -> tuple[str, str | None]:
    """(the canonical trigger; why the submission is refused, or None): `submission_problem`,
    and the site's permission."""
    canonical, problem = submission_problem(trigger, language, code)
    if problem is None and not allowed:
        problem = ("global callbacks are off on this site (enable with "
                   f"{GLOBALS_KEY} = true in qb.conf, or "
                   "DispatcherSettings(allow_global_callbacks=True))")
    return canonical, problem


class GlobalBook:
    """The global callbacks of one dispatcher: the trail's table, the matcher, the timer."""

    def __init__(self, table: GlobalTable, settings: DispatcherSettings, timer: Timer) -> None:
        self._table = table
        self._settings = settings
        self._timer = timer
        self.matcher = GlobalMatcher(parse_trigger, on_instant=self._fired)
        #: Instants fired on in the batch being matched, written once it is recorded.
        self._unsaved: list[tuple[int, float]] = []

    def start(self) -> None:
        """Take the global callbacks the trail keeps in force (from before a restart)."""
        self.matcher.set(self._table.active())
        for callback_id, trigger in self.matcher.triggers().items():
            self._timer.set_global(callback_id, trigger)

    def _fired(self, callback_id: int, instant: float) -> None:
        self._unsaved.append((callback_id, instant))

    def committed(self, ok: bool) -> None:
        """After a batch (from the matcher thread): the instants its global firings were on
        are written only once those firings are in the trail. Written before, a host killed
        in between would skip, after its restart, an instant whose firing never ran; not
        written (the batch stays in the journal), the next start fires it then."""
        unsaved, self._unsaved = self._unsaved, []
        for callback_id, instant in unsaved if ok else ():
            try:
                self._table.fired(callback_id, instant)
            except AuditError:  # it may fire that instant again after a restart; say so
                log.exception("could not record the instant global callback %d fired on",
                              callback_id)

    def submit(self, trigger: str, *, language: str, code: str) -> int:
        """Keep a new global callback in force and return its id; `GlobalCallbackError` (the
        refusal kept in the trail) when the site does not allow it or it is not valid."""
        canonical, problem = refusal_of(trigger, language, code,
                                        allowed=self._settings.allow_global_callbacks)
        if problem is not None:
            self._table.refuse(canonical, language, code, problem)
            raise GlobalCallbackError(f"global callback refused: {problem}")
        added = self._table.add(canonical, language, code)
        # In force first, scheduled second: an instant raised in between reaches it as an
        # ordinary event, and the one then owed to it finds it already seen (never neither).
        self.matcher.add(added)
        self._timer.set_global(added.id, parse_trigger(canonical))
        return added.id

    def remove(self, callback_id: int) -> None:
        """Take a global callback out of force; `GlobalCallbackError` when none has that id."""
        if not self._table.remove(callback_id):
            raise GlobalCallbackError(f"no global callback {callback_id} is in force")
        self.matcher.remove(callback_id)
        self._timer.set_global(callback_id, None)

    def listing(self) -> tuple[GlobalCallback, ...]:
        return tuple(self._table.active())


class WithGlobals:
    """A `MatchSource` that adds the global firings of each event after the others."""

    def __init__(self, inner: MatchSource, matcher: GlobalMatcher, clock: Clock) -> None:
        self._inner, self._globals, self._clock = inner, matcher, clock

    def observe(self, event: Event, job: Job | None) -> Sequence[Firing]:
        if self._globals.idle:  # the common case: a site with no global callbacks
            return self._inner.observe(event, job)
        found = self._inner.observe(event, job)
        extra = self._globals.observe(event, to_qube(self._clock.now()))
        return [*found, *extra] if extra else found

    def observe_many(self, events: Sequence[tuple[Event, Job | None]]
                     ) -> list[Sequence[Firing] | Exception]:
        """Each event's firings in turn (see `MatcherSource.observe_many`): all at once
        from the inner source while no global callback is in force."""
        many = getattr(self._inner, "observe_many", None)
        if many is not None and self._globals.idle:
            found: list[Sequence[Firing] | Exception] = many(events)
            return found
        out: list[Sequence[Firing] | Exception] = []
        for event, job in events:
            try:
                out.append(self.observe(event, job))
            except Exception as exc:  # reported by the caller
                out.append(exc)
        return out

    def observe_for(self, event: Event, audience: Audience) -> Sequence[Firing]:
        found = self._inner.observe_for(event, audience)
        picked = audience.among("global")
        if picked is None or self._globals.idle:
            return found
        # The instant the raise stands for, not the clock's: a repeat matched late is still
        # the instant it was raised for, and the next one is not taken for it.
        now = audience.instant if audience.instant is not None else to_qube(self._clock.now())
        extra = self._globals.observe(event, now, *picked)
        return [*found, *extra] if extra else found

    def set_rules(self, rules: Sequence[Rule]) -> None:
        self._inner.set_rules(rules)

    def live_jobs(self) -> Collection[int]:
        return self._inner.live_jobs()
