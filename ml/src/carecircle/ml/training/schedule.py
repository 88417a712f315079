"""APScheduler jobs: nightly incremental training and hourly live scoring.

The platform scheduler (one leader, advisory lock) calls :func:`register_jobs`.
"""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from carecircle.common.clock import Clock, SystemClock
from carecircle.ml.registry.store import ModelRegistry
from carecircle.ml.scoring.live import ScoreReport, score_hour
from carecircle.ml.training.core import TrainConfig, zone
from carecircle.ml.training.jobs import TrainReport, train
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect

log = logging.getLogger(__name__)
TRAIN_JOB = "ml-train"
SCORE_JOB = "ml-score"


def train_config(settings: PlatformSettings) -> TrainConfig:
    return TrainConfig(
        seed=settings.ml_seed,
        window_days=settings.ml_window_days,
        holdout_days=settings.ml_holdout_days,
        tz=zone(settings.timezone),
    )


def registry_of(settings: PlatformSettings) -> ModelRegistry:
    settings.ml_registry_dir.mkdir(parents=True, exist_ok=True)
    return ModelRegistry(settings.ml_registry_dir)


def nightly_training(
    settings: PlatformSettings, clock: Clock, registry: ModelRegistry
) -> TrainReport:
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        until = clock.now()
        if settings.ml_train_until is not None:
            until = min(until, settings.ml_train_until)  # frozen for a held-out period
        report = train(conn, registry, train_config(settings), until=until, incremental=True)
    log.info("nightly ml training done: %s", report.summary())
    return report


def hourly_scoring(
    settings: PlatformSettings, clock: Clock, registry: ModelRegistry
) -> ScoreReport:
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        return score_hour(conn, registry, clock.now(), zone(settings.timezone))


def register_jobs(scheduler: Any, settings: PlatformSettings, clock: Clock | None = None) -> None:
    """Add ``ml-train`` (nightly) and ``ml-score`` (hourly) to an APScheduler 3 scheduler."""
    clock = clock or SystemClock()
    tz = zone(settings.timezone)
    registry = registry_of(settings)
    scheduler.add_job(
        nightly_training,
        CronTrigger(hour=settings.ml_train_hour, minute=15, timezone=tz),
        args=(settings, clock, registry),
        id=TRAIN_JOB,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        hourly_scoring,
        CronTrigger(minute=settings.ml_score_minute, timezone=tz),
        args=(settings, clock, registry),
        id=SCORE_JOB,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=600,
    )


def register_scheduler(scheduler: Any, ctx: Any) -> None:
    """Entry point for ``carecircle platform scheduler`` (group ``carecircle.scheduler.jobs``)."""
    register_jobs(scheduler, ctx.settings, ctx.clock)
