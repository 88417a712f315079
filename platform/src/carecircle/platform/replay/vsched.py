"""A virtual-time stand-in for an APScheduler 3 scheduler.

The real job registrars (:func:`carecircle.platform.scheduler.jobs.registrars`: the
store's own jobs and every ``carecircle.scheduler.jobs`` entry point) call
``scheduler.add_job(func, trigger, …)``.  :class:`VirtualScheduler` accepts the same
call, builds the same APScheduler trigger object and, when the replay moves its
virtual clock, runs each job at the fire times the trigger gives — synchronously, on
the caller's thread, in time order.  ``coalesce`` is implied: a job whose fire times
were passed over runs once, at the first of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from carecircle.common.clock import ManualClock

log = logging.getLogger(__name__)

_UNDEFINED = object()
#: ``add_job`` keywords that are not trigger arguments.
_JOB_OPTIONS = frozenset(
    {
        "name",
        "misfire_grace_time",
        "coalesce",
        "max_instances",
        "jobstore",
        "executor",
        "replace_existing",
    }
)


@dataclass
class VirtualJob:
    id: str
    func: Callable[..., Any]
    trigger: BaseTrigger
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    next_run: datetime | None = None
    runs: int = 0
    failures: int = 0
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failures": self.failures,
            "wall_s": round(self.wall_s, 2),
            "trigger": str(self.trigger),
        }


class VirtualScheduler:
    """Records ``add_job`` calls and runs the jobs as :meth:`run_due` moves the clock."""

    def __init__(self, clock: ManualClock, timezone: str = "UTC") -> None:
        self.clock = clock
        self.timezone = ZoneInfo(timezone)
        self.jobs: dict[str, VirtualJob] = {}
        self.skipped: set[str] = set()

    # -- the part of the APScheduler 3 interface the registrars use ----------------------
    def add_job(
        self,
        func: Callable[..., Any],
        trigger: str | BaseTrigger | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        id: str | None = None,
        next_run_time: Any = _UNDEFINED,
        **options: Any,
    ) -> VirtualJob:
        trigger_args = {k: v for k, v in options.items() if k not in _JOB_OPTIONS}
        trig = self._trigger(trigger, trigger_args)
        job_id = str(id or getattr(func, "__name__", f"job-{len(self.jobs) + 1}"))
        now = self.clock.now()
        # next_run_time=None means added paused, as in APScheduler
        first = trig.get_next_fire_time(None, now) if next_run_time is _UNDEFINED else next_run_time
        job = VirtualJob(job_id, func, trig, tuple(args or ()), dict(kwargs or {}), first)
        if job_id in self.jobs and not options.get("replace_existing", False):
            raise ValueError(f"a job with id {job_id!r} is already registered")
        self.jobs[job_id] = job
        log.info("virtual scheduler: job %s, %s, first run %s", job_id, trig, first)
        return job

    def get_jobs(self) -> list[VirtualJob]:
        return list(self.jobs.values())

    def remove_job(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    # -- virtual time ----------------------------------------------------------------------
    def _trigger(self, trigger: str | BaseTrigger | None, args: dict[str, Any]) -> BaseTrigger:
        if isinstance(trigger, BaseTrigger):
            return trigger
        args.setdefault("timezone", self.timezone)
        now = self.clock.now()
        if trigger == "interval":
            trig = IntervalTrigger(**args)
            if "start_date" not in args:
                # APScheduler starts an interval at wall-clock now + interval; here: virtual now
                trig = IntervalTrigger(**args, start_date=now + trig.interval)
            return trig
        if trigger == "cron":
            return CronTrigger(**args)
        if trigger in ("date", None):
            args.setdefault("run_date", now)
            return DateTrigger(**args)
        raise ValueError(f"unknown trigger {trigger!r}")

    def next_due(self) -> datetime | None:
        times = [j.next_run for j in self.jobs.values() if j.next_run is not None]
        return min(times) if times else None

    def run_due(
        self, until: datetime, before_each: Callable[[datetime], None] | None = None
    ) -> int:
        """Run, in time order, every job due at or before ``until``; the clock is set to each
        fire time.  ``before_each(t)`` runs first (the replay flushes data up to ``t``).
        Returns how many job runs there were."""
        n = 0
        while True:
            due = [j for j in self.jobs.values() if j.next_run is not None and j.next_run <= until]
            if not due:
                return n
            job = min(due, key=lambda j: (j.next_run, j.id))
            at = job.next_run
            assert at is not None
            if before_each is not None:
                before_each(at)
            self.clock.set(at)
            if job.id not in self.skipped:
                began = time.monotonic()
                try:
                    job.func(*job.args, **job.kwargs)
                except Exception:
                    job.failures += 1
                    log.exception("virtual scheduler: job %s failed at %s", job.id, at)
                job.wall_s += time.monotonic() - began
                job.runs += 1
                n += 1
            nxt = job.trigger.get_next_fire_time(at, at + timedelta(microseconds=1))
            while nxt is not None and nxt <= at:  # a trigger must move forward
                nxt = job.trigger.get_next_fire_time(nxt, nxt + timedelta(seconds=1))
            job.next_run = nxt
