"""Which jobs the scheduler runs.  To add yours: write ``register(scheduler, ctx)`` in your
domain and add it to :data:`REGISTRARS` (one line; the scheduler calls each in order)."""

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


#: Every domain's job registrar, called in order when this process becomes the leader.
REGISTRARS: list[Registrar] = [
    register_store_and_rollups,
]
