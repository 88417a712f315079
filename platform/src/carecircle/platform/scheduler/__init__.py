"""The platform scheduler: APScheduler jobs run by exactly one leader (PostgreSQL advisory lock).

Domains add jobs by adding a registrar to :data:`carecircle.platform.scheduler.jobs.REGISTRARS`.
"""

from carecircle.platform.scheduler.service import JobContext, LeaderLock, run_scheduler

__all__ = ["JobContext", "LeaderLock", "run_scheduler"]
