"""Which jobs the scheduler runs.

The store's own jobs are in :data:`REGISTRARS`.  Other domains and components add
theirs without this module knowing them: a ``register(scheduler, ctx)`` function named
in the ``carecircle.scheduler.jobs`` entry-point group of their ``pyproject.toml`` (so
``carecircle-ml`` adds its training jobs only where it is installed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.base import BaseScheduler

from carecircle.platform.scheduler.service import JobContext
from carecircle.platform.store.timeseries import Retention, backend_for

log = logging.getLogger(__name__)

Registrar = Callable[[BaseScheduler, JobContext], None]


def maintain_job(ctx: JobContext) -> None:
    """Time-series upkeep: partitions ahead, raw retention, and rollup retention."""
    from carecircle.platform.rollups import RollupRetention, apply_rollup_retention

    s = ctx.settings
    retention = Retention.days(s.raw_retention_days, s.event_retention_days)
    with ctx.connect() as conn:
        row = conn.execute(
            "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
        ).fetchone()
        backend = backend_for(str(row[0]) if row else "plain")
        backend.apply_policies(conn, retention)
        backend.maintain(conn, ctx.clock.now(), retention, s.partition_days_ahead)
        apply_rollup_retention(
            conn,
            ctx.clock.now(),
            RollupRetention.days(s.rollup_1m_retention_days, s.rollup_1h_retention_days),
        )


def rollup_job(ctx: JobContext) -> None:
    from carecircle.platform.rollups import refresh_rollups

    with ctx.connect() as conn:
        while refresh_rollups(conn, ctx.clock.now()).minute_buckets:
            pass  # keep going while there is a backlog of dirty minutes


def register_store_and_rollups(scheduler: BaseScheduler, ctx: JobContext) -> None:
    s = ctx.settings
    scheduler.add_job(
        ctx.guarded(maintain_job),
        "interval",
        seconds=s.maintain_interval_s,
        id="maintain",
        next_run_time=ctx.clock.now(),
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        ctx.guarded(rollup_job),
        "interval",
        seconds=s.rollup_interval_s,
        id="rollups",
        next_run_time=ctx.clock.now(),
        max_instances=1,
        coalesce=True,
    )


def register_config_push(scheduler: BaseScheduler, ctx: JobContext) -> None:
    from carecircle.platform.registry.jobs import register_scheduler

    register_scheduler(scheduler, ctx)


#: The platform's own registrars; others come from the entry-point group below.
REGISTRARS: list[Registrar] = [
    register_store_and_rollups,
    register_config_push,
]
REGISTRAR_GROUP = "carecircle.scheduler.jobs"


def registrars() -> list[Registrar]:
    """:data:`REGISTRARS` then every installed ``carecircle.scheduler.jobs`` entry point."""
    from importlib.metadata import entry_points

    found: list[Registrar] = list(REGISTRARS)
    for ep in sorted(entry_points(group=REGISTRAR_GROUP), key=lambda e: e.name):
        found.append(ep.load())
        log.info("scheduler jobs registered by %s", ep.name)
    return found
