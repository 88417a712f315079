"""``carecircle platform scheduler``: run the scheduled jobs (one leader among replicas)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.platform.scheduler.service import run_scheduler
from carecircle.platform.settings import PlatformSettings

log = logging.getLogger(__name__)


@click.command("scheduler")
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@pass_cli
def scheduler_cmd(cli: CliContext, database_url: str | None) -> None:
    """Run rollups, partition upkeep and the other domains' jobs until SIGTERM/SIGINT."""
    settings = cli.settings(PlatformSettings, database_url=database_url)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the scheduler", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_scheduler(settings, stop)
