"""The config-push job: every gateway whose configuration changed gets it, retained."""

from __future__ import annotations

import logging
from typing import Any

from carecircle.common.contract import Topics
from carecircle.common.errors import BrokerUnavailable
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.registry.service import push_pending_configs

log = logging.getLogger(__name__)


def config_push_job(ctx: Any) -> None:
    """Publish pending gateway configs; a broker outage leaves them pending for next time."""
    s = ctx.settings
    with ctx.connect() as conn:
        try:
            pushed = push_pending_configs(
                conn, BrokerAddress.from_url(s.mqtt_url), Topics(s.topic_root)
            )
        except BrokerUnavailable as err:
            log.warning("gateway configs stay pending: %s", err)
            return
    if pushed:
        log.info("pushed the configuration of %d gateways", len(pushed))


def register_scheduler(scheduler: Any, ctx: Any) -> None:
    scheduler.add_job(
        ctx.guarded(config_push_job),
        "interval",
        seconds=ctx.settings.config_push_interval_s,
        id="config_push",
        next_run_time=ctx.clock.now(),
        max_instances=1,
        coalesce=True,
    )
