"""A small simulated farm for `qbcallbacks simulate`: jobs driven through their states.

Each process group holds a `render` job with frames and a `comp` job submitted blocked whose
frames wait for the same-named render frames (the frame-by-frame dependency of the examples);
some groups add a `lighting` job. Frames run a few at a time on pretend workers; a frame fails
at random (seeded), is retried once, and a frame that fails twice fails its job. A comp frame
that can never be unblocked (its render frame failed) is killed with its job at the end, as an
operator would.

Determinism: every random choice comes from one seeded generator and the farm waits for the
dispatcher to go idle after each step, so the callbacks' own actions (unblocking frames) have
landed before the farm looks again. The event *stream* is therefore the same for a seed, up
to the order of events that concurrent callbacks of different jobs cause within one step.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..model._base import Frozen
from ..model.statuses import FINAL_JOB_STATES as FINAL
from .sqlite import JobSpec, SqliteSupervisor

Progress = Callable[[int, int], None]


class FarmPlan(Frozen):
    """The shape of a simulated run."""

    seed: int = 1
    groups: int = 3
    frames: int = 4
    #: Frames running at once over the farm.
    slots: int = 4
    #: Chance that one run of a frame fails.
    fail_rate: float = 0.15
    #: Retries of a failed frame before the job fails.
    retries: int = 1
    #: Remove every job at the end (exercises `removed` triggers and frees matcher state).
    remove_at_end: bool = True


class FarmReport(Frozen):
    steps: int
    jobs: int
    frames_run: int
    frames_failed: int
    jobs_by_status: dict[str, int]


class Farm:
    """Drives a `SqliteSupervisor`; `settle` is called after each step (the dispatcher's
    `wait_idle`), so that callbacks' effects are visible to the next step."""

    def __init__(self, supervisor: SqliteSupervisor, plan: FarmPlan,
                 settle: Callable[[], object]) -> None:
        self.sup = supervisor
        self.plan = plan
        self.settle = settle
        self.rng = random.Random(plan.seed)

    @property
    def total_work(self) -> int:
        """A measure of progress: frames to finish over the whole plan."""
        return sum(len(self._specs(g)) * self.plan.frames for g in range(self.plan.groups))

    def _specs(self, group: int) -> list[JobSpec]:
        frames = tuple(str(i) for i in range(1, self.plan.frames + 1))
        specs = [
            JobSpec(name=f"shot{group:02d}_render", label="render", frames=frames),
            JobSpec(name=f"shot{group:02d}_comp", label="comp", frames=frames, blocked=True,
                    parent=0),
        ]
        if group % 2 == 1:
            specs.append(JobSpec(name=f"shot{group:02d}_lighting", label="lighting",
                                 frames=frames[: max(1, len(frames) // 2)]))
        return specs

    def run(self, progress: Progress | None = None) -> FarmReport:
        for group in range(self.plan.groups):
            self.sup.submit(self._specs(group))
            self.settle()
        total = self.total_work
        running: list[tuple[int, str]] = []
        steps = frames_run = frames_failed = 0
        while True:
            steps += 1
            # Finish what ran during the last step, in a seeded order.
            self.rng.shuffle(running)
            for job_id, frame in running:
                frames_run += 1
                if self.rng.random() < self.plan.fail_rate:
                    frames_failed += 1
                    self._fail_frame(job_id, frame)
                else:
                    self.sup.set_work_status(job_id, frame, "complete")
                self._settle_job(job_id)
            running = []
            self.settle()
            # Start the next frames: pending frames of jobs that are not finished.
            for job_id, frame in self._pending()[: self.plan.slots]:
                job = self.sup.job(job_id)
                if job is not None and job.status in ("pending", "blocked"):
                    self.sup.set_job_status(job_id, "running")
                self.sup.set_work_status(job_id, frame, "running")
                running.append((job_id, frame))
            self.settle()
            if progress is not None:
                progress(self._finished_frames(), total)
            if not running:
                break
        # Nothing can move any more: what is still blocked waits on a failed frame.
        for job in self.sup.jobs():
            if job.status not in FINAL:
                self.sup.job_action("kill", job.id)
                self.settle()
        if progress is not None:
            progress(total, total)
        report = FarmReport(steps=steps, jobs=len(self.sup.jobs()), frames_run=frames_run,
                            frames_failed=frames_failed, jobs_by_status=self._by_status())
        if self.plan.remove_at_end:
            for job in self.sup.jobs():
                self.sup.job_action("remove", job.id)
            self.settle()
        return report

    def _fail_frame(self, job_id: int, frame: str) -> None:
        item = next(w for w in self.sup.work(job_id) if w.name == frame)
        self.sup.set_work_status(job_id, frame, "failed")
        if item.retries < self.plan.retries:
            self.sup.work_action("retry", job_id, frame)

    def _settle_job(self, job_id: int) -> None:
        items = self.sup.work(job_id)
        if all(w.status in FINAL for w in items):
            job = self.sup.job(job_id)
            if job is not None and job.status not in FINAL:
                ok = all(w.status == "complete" for w in items)
                self.sup.set_job_status(job_id, "complete" if ok else "failed")

    def _pending(self) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for job in self.sup.jobs():
            if job.status in FINAL or job.status == "suspended":
                continue
            out.extend((job.id, w.name) for w in self.sup.work(job.id) if w.status == "pending")
        return out

    def _finished_frames(self) -> int:
        return sum(1 for job in self.sup.jobs() for w in self.sup.work(job.id)
                   if w.status in FINAL)

    def _by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job in self.sup.jobs():
            counts[job.status] = counts.get(job.status, 0) + 1
        return dict(sorted(counts.items()))
