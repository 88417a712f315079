"""Leader election and the scheduler loop.

Several ``carecircle platform scheduler`` processes may run (for availability); the
one holding the PostgreSQL session advisory lock runs the jobs, the others wait.  The
lock is a lease (:class:`~carecircle.platform.scheduler.leader.LeaderLock`): the leader
confirms it every ``check_interval_s``; if its session breaks or the check fails, it
stops its jobs at once and competes again, and a standby takes over as soon as the
server releases the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from carecircle.common.clock import Clock, SystemClock
from carecircle.common.errors import CareCircleError
from carecircle.platform.scheduler.leader import LeaderLock, leader_connection_factory
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class JobContext:
    settings: PlatformSettings
    clock: Clock

    def connect(self) -> Conn:
        """A fresh autocommit connection for one job run."""
        return connect(
            self.settings.database_url,
            timeout_s=self.settings.db_connect_timeout_s,
            autocommit=True,
        )

    def guarded(self, job: Callable[[JobContext], None]) -> Callable[[], None]:
        """Wrap ``job`` so a failure is logged, never kills the scheduler."""

        def run() -> None:
            try:
                job(self)
            except (CareCircleError, psycopg.Error):
                log.exception("scheduled job %s failed", job.__name__)

        run.__name__ = job.__name__
        run.__qualname__ = job.__name__  # APScheduler logs a job by its qualified name
        return run


def run_scheduler(
    settings: PlatformSettings,
    stop: threading.Event,
    *,
    clock: Clock | None = None,
    check_interval_s: float = 5.0,
    on_leader: Callable[[BackgroundScheduler], None] | None = None,
) -> None:
    """Compete for leadership and run the registered jobs while leader, until ``stop``."""
    from carecircle.platform.scheduler.jobs import registrars

    ctx = JobContext(settings, clock or SystemClock())
    lock = LeaderLock(
        leader_connection_factory(
            str(settings.database_url), connect_timeout_s=settings.db_connect_timeout_s
        ),
        check_interval_s=check_interval_s,
        lease_s=max(8.0, 3 * check_interval_s),
    )
    while not stop.is_set():
        if not lock.try_acquire():
            stop.wait(check_interval_s)
            continue
        log.info("this scheduler is the leader")
        scheduler = BackgroundScheduler(timezone="UTC")
        for register in registrars():
            register(scheduler, ctx)
        scheduler.start()
        if on_leader is not None:
            on_leader(scheduler)
        try:
            while not stop.wait(check_interval_s):
                if not lock.confirm():
                    log.error("lost the leader lock (database connection broke); stopping jobs")
                    break
        finally:
            scheduler.shutdown(wait=True)
    lock.release()
