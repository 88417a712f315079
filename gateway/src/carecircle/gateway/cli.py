"""``carecircle gateway …`` commands."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.errors import ConfigError, StoreError
from carecircle.gateway.settings import GatewaySettings

if TYPE_CHECKING:
    from carecircle.gateway.runtime import Gateway

log = logging.getLogger(__name__)
CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML settings file (same as `carecircle --config`).",
)


@click.group("gateway")
def gateway() -> None:
    """The edge gateway in a household, day-care centre or nursing home."""


def _context(cli: CliContext, config_file: Path | None) -> CliContext:
    return CliContext(config_file=config_file) if config_file is not None else cli


@gateway.command("show-config")
@click.option("--gateway-id", help="this gateway's id [CARECIRCLE_GATEWAY_ID]")
@CONFIG_OPTION
@pass_cli
def show_config(cli: CliContext, gateway_id: str | None, config_file: Path | None) -> None:
    """Print the effective gateway settings."""
    settings = _context(cli, config_file).settings(GatewaySettings, gateway_id=gateway_id)
    click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


@gateway.command("run")
@click.option("--gateway-id", help="this gateway's id [CARECIRCLE_GATEWAY_ID]")
@click.option(
    "--queue", "queue_path", type=click.Path(dir_okay=False, path_type=Path), help="queue file"
)
@CONFIG_OPTION
@pass_cli
def run(
    cli: CliContext, gateway_id: str | None, queue_path: Path | None, config_file: Path | None
) -> None:
    """Run the gateway until SIGTERM/SIGINT: devices → durable queue → platform.

    With ``[[gateway.sites]]`` tables in the settings file, one process serves
    several gateways, each with its own identity, credentials and queue.
    """
    from carecircle.gateway.runtime import Gateway, GatewayHost

    settings = _context(cli, config_file).settings(
        GatewaySettings, gateway_id=gateway_id, queue_path=queue_path
    )
    if settings.sites and (gateway_id or queue_path):
        raise ConfigError(
            "--gateway-id and --queue name one gateway; with [[gateway.sites]] "
            "set gateway_id and queue_path per site"
        )
    gateways = settings.gateways()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if len(gateways) == 1:  # the edge box
        gw = Gateway(gateways[0])
        _log_start(gw)
        gw.run(stop)
        return
    host = GatewayHost(gateways)
    for gw in host.gateways:
        _log_start(gw)
    host.run(stop)


def _log_start(gw: Gateway) -> None:
    gw.log.info(
        "gateway %s starting: queue %s (%d waiting), uplink %s",
        gw.settings.gateway_id,
        gw.settings.queue_path,
        len(gw.outbox),
        gw.settings.mqtt_url.host,
    )


@gateway.command("status")
@click.option(
    "--queue",
    "queue_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="queue file (default: the configured queue_path; every site's with [[gateway.sites]])",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (one line per site)")
@CONFIG_OPTION
@pass_cli
def status(
    cli: CliContext, queue_path: Path | None, as_json: bool, config_file: Path | None
) -> None:
    """Print the queue depth per lane, the oldest waiting message and the counters."""
    if queue_path is not None:
        paths = [queue_path]
    else:
        paths = [
            g.queue_path for g in _context(cli, config_file).settings(GatewaySettings).gateways()
        ]
    for path in paths:
        doc = _queue_status(path)
        if as_json:
            click.echo(json.dumps(doc))
            continue
        click.echo(f"queue {path}: {doc['depth']} waiting")
        click.echo("  " + "  ".join(f"{k}={v}" for k, v in doc["lanes"].items()))
        if doc["oldest_age_s"] is not None:
            click.echo(f"  oldest waiting {doc['oldest_age_s']} s")
        for key, value in sorted(doc["counters"].items()):
            click.echo(f"  {key}: {value}")


def _queue_status(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise StoreError(f"queue {path} does not exist")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            lanes = dict(db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane").fetchall())
            oldest = db.execute("SELECT min(created) FROM outbox").fetchone()[0]
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        finally:
            db.close()
    except sqlite3.Error as err:
        raise StoreError(f"cannot read queue {path}: {err}") from err
    names = {0: "alarm", 1: "status", 2: "deadletter", 3: "routine"}
    depth = {names[k]: int(lanes.get(k, 0)) for k in names}
    return {
        "queue": str(path),
        "depth": sum(depth.values()),
        "lanes": depth,
        "oldest_age_s": round(time.time() - oldest, 1) if oldest is not None else None,
        "counters": counters,
    }
