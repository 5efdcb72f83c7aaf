"""The oracle across the scheduler and the matchers: for any interleaving of jobs attached and
removed (with callbacks of their own on shared instants), global callbacks submitted, clock
moves and the stream's matching, every callback takes each instant at most once, and every
job's and global callback's own schedule gives it its latest due instant."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from hypothesis import example, given
from hypothesis import strategies as st

from qbcallbacks.lang import parse_trigger
from qbcallbacks.matching.clock import from_qube
from qbcallbacks.matching.globals import GlobalMatcher
from qbcallbacks.matching.matcher import Matcher
from qbcallbacks.matching.owner import global_owner
from qbcallbacks.matching.schedule import Raised, Scheduler, job_time_specs, time_specs
from qbcallbacks.model.events import Event, Job, JobCallback
from qbcallbacks.model.globals import GlobalCallback
from qbcallbacks.model.rules import Rule

TRIGGERS = ["globaltime-100", "globalrepeat-90-40", "dummy-time-self-120"]
RULES = [Rule(directory="site", file=f"r{i}.py", language="python",
              trigger=parse_trigger(text), line=i + 1, position=i)
         for i, text in enumerate(TRIGGERS)]


def latest(text: str, now: float) -> float | None:
    """The latest instant of a trigger at or before Qube time `now`."""
    (spec,) = time_specs([parse_trigger(text)], Job(id=1))
    if now < spec.start:
        return None
    if not spec.interval:
        return spec.start
    return spec.start + (now - spec.start) // spec.interval * spec.interval


@dataclass
class Farm:
    """The matcher thread, played by hand: a stream of items matched in order."""

    sched: Scheduler = field(default_factory=Scheduler)
    matcher: Matcher = field(default_factory=lambda: Matcher(RULES))
    globals: GlobalMatcher = field(default_factory=lambda: GlobalMatcher(parse_trigger))
    stream: deque[tuple[Event, Job | None, int] | Raised] = field(default_factory=deque)
    now: float = 60.0
    #: Each job's lifetime as the matcher has it (a job removed and attached again is a new
    #: one), and the jobs live once the stream queued so far is matched.
    life: dict[int, int] = field(default_factory=dict)
    queued: set[int] = field(default_factory=set)
    lives: int = 0
    #: Who took which instant: (callback, job lifetime or global id) -> instants.
    took: Counter[tuple[str, int, float]] = field(default_factory=Counter)
    #: What is held at the end: (callback, owner key, trigger).
    owned: dict[tuple[str, int], str] = field(default_factory=dict)

    def match(self) -> None:
        item = self.stream.popleft()
        if isinstance(item, Raised):
            audience = self.sched.audience(item.event, item.stamp)
            if audience is None:
                return
            found = list(self.matcher.observe_for(item.event, audience))
            picked = audience.among("global")
            if picked is not None:
                found += self.globals.observe(item.event, item.stamp.instant, *picked)
            for f in found:
                key = f.job if f.rule is not None or f.job == 0 else self.life[f.job]
                self.took[f.callback, key, item.stamp.instant] += 1
            return
        event, job, lifetime = item
        if event.name == "removed":
            self.sched.drop_job(event.job)
            assert not self.sched.owns_job(event.job)
        elif job is not None:
            specs = job_time_specs(job)
            self.sched.set_job_specs(job.id, specs)
            assert self.sched.owns_job(job.id) == bool(specs)
            self.life[job.id] = lifetime
        self.matcher.observe(event, job)

    def attach(self, job_id: int, own: list[str]) -> None:
        if job_id in self.queued:
            return  # an update is the same owner: only fresh jobs here
        self.queued.add(job_id)
        self.lives += 1
        for i, text in enumerate(own):
            self.owned[f"job:{job_id}#{i}", self.lives] = text
        callbacks = tuple(JobCallback(triggers=t, language="qube", code="mail-status")
                          for t in own)
        self.stream.append((Event(name="submit", type="job", job=job_id),
                            Job(id=job_id, callbacks=callbacks), self.lives))

    def remove(self, job_id: int) -> None:
        self.queued.discard(job_id)
        self.stream.append((Event(name="removed", type="job", job=job_id), None, 0))
        for name in [n for n in self.owned if n[0].startswith(f"job:{job_id}#")]:
            del self.owned[name]

    def submit_global(self, text: str) -> None:
        gid = len([k for k in self.owned if k[0].startswith("global:")]) + 1
        self.globals.add(GlobalCallback(id=gid, trigger=text, language="python", code="x"))
        self.sched.set_owner(global_owner(gid), time_specs([parse_trigger(text)]))
        self.owned[f"global:{gid}", 0] = text

    def tick(self, seconds: int) -> None:
        self.now += seconds
        self.stream.extend(self.sched.raise_due(from_qube(self.now), self.matcher.live_jobs))


steps = st.lists(st.one_of(
    st.tuples(st.just("attach"), st.integers(1, 3),
              st.lists(st.sampled_from(TRIGGERS), max_size=2)),
    st.tuples(st.just("remove"), st.integers(1, 3)),
    st.tuples(st.just("global"), st.sampled_from(TRIGGERS[:2])),
    st.tuples(st.just("clock"), st.integers(0, 50)),
    st.tuples(st.just("match"), st.integers(1, 4)),
), max_size=30)


@given(steps)
@example([("attach", 1, []), ("match", 1), ("clock", 45), ("attach", 2, ["globaltime-100"]),
          ("global", "globaltime-100"), ("match", 4), ("clock", 1), ("match", 4)])
def test_every_callback_takes_each_instant_once(plan: list[tuple[object, ...]]) -> None:
    farm = Farm()
    farm.sched.set_specs(time_specs(r.trigger for r in RULES))
    for step in plan:
        kind, arg = step[0], step[1]
        if kind == "attach" and isinstance(arg, int) and isinstance(step[2], list):
            farm.attach(arg, step[2])
        elif kind == "remove" and isinstance(arg, int):
            farm.remove(arg)
        elif kind == "global" and isinstance(arg, str):
            farm.submit_global(arg)
        elif kind == "clock" and isinstance(arg, int):
            farm.tick(arg)
        elif kind == "match" and isinstance(arg, int):
            for _ in range(min(arg, len(farm.stream))):
                farm.match()
    for _ in range(3):
        farm.tick(0)
        while farm.stream:
            farm.match()
    assert all(n == 1 for n in farm.took.values()), farm.took
    for (callback, key), text in farm.owned.items():
        due = latest(text, farm.now)
        if due is not None:
            assert farm.took[callback, key, due] == 1, (callback, text, due)
    assert set(farm.matcher.live_jobs) == farm.queued  # no phantom job
