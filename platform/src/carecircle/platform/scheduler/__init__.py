"""The platform scheduler: APScheduler jobs run by exactly one leader (PostgreSQL advisory lock).

Domains add jobs through the ``carecircle.scheduler.jobs`` entry-point group (see ``jobs.py``).
"""

from carecircle.platform.scheduler.leader import LeaderLock
from carecircle.platform.scheduler.service import JobContext, run_scheduler

__all__ = ["JobContext", "LeaderLock", "run_scheduler"]
