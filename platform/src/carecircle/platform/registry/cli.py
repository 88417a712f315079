"""``carecircle platform provision``, ``push-configs``, ``retire-device`` and ``retire-gateway``."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import utcnow
from carecircle.common.contract import Topics
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.privacy.contacts import writing_cipher
from carecircle.platform.registry.service import (
    RetireReport,
    gateway_configs,
    load_provisioning,
    provision,
    publish_configs,
    push_pending_configs,
    retire_device,
    retire_gateway,
)
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect


def _push_now(conn: Any, settings: PlatformSettings, gateways: list[str]) -> list[str]:
    """Publish the configs of ``gateways`` that changed (the scheduler retries a failure)."""
    if not gateways:
        return []
    return push_pending_configs(
        conn, BrokerAddress.from_url(settings.mqtt_url), Topics(settings.topic_root), only=gateways
    )


@click.command("provision")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="provisioning document (JSON), e.g. from `carecircle sim population`",
)
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@click.option("--mqtt-url", help="MQTT broker URL [CARECIRCLE_MQTT_URL]")
@click.option("--topic-root", help="first MQTT topic segment [CARECIRCLE_TOPIC_ROOT]")
@click.option("--no-push", is_flag=True, help="do not publish the changed gateway configs")
@pass_cli
def provision_cmd(
    cli: CliContext,
    path: Path,
    database_url: str | None,
    mqtt_url: str | None,
    topic_root: str | None,
    no_push: bool,
) -> None:
    """Load places, sites, people and devices (idempotent, one transaction); push configs."""
    settings = cli.settings(
        PlatformSettings, database_url=database_url, mqtt_url=mqtt_url, topic_root=topic_root
    )
    doc = load_provisioning(path)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        report = provision(conn, doc, writing_cipher(settings))
        pushed = [] if no_push else _push_now(conn, settings, report.gateways)
    click.echo(
        json.dumps(
            {"changed": report.changed, "gateways": report.gateways, "configs_pushed": len(pushed)}
        )
    )


@click.command("push-configs")
@click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")
@click.option("--mqtt-url", help="MQTT broker URL [CARECIRCLE_MQTT_URL]")
@click.option("--topic-root", help="first MQTT topic segment [CARECIRCLE_TOPIC_ROOT]")
@click.option("--gateway", "gateways", multiple=True, help="only these gateways (repeatable)")
@pass_cli
def push_configs_cmd(
    cli: CliContext,
    database_url: str | None,
    mqtt_url: str | None,
    topic_root: str | None,
    gateways: tuple[str, ...],
) -> None:
    """Publish (retained) the current configuration of every gateway, or of some."""
    settings = cli.settings(
        PlatformSettings, database_url=database_url, mqtt_url=mqtt_url, topic_root=topic_root
    )
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        configs = gateway_configs(conn, list(gateways) or None)
    pushed = publish_configs(
        BrokerAddress.from_url(settings.mqtt_url), Topics(settings.topic_root), configs
    )
    click.echo(json.dumps({"configs_pushed": pushed}))


def _retire(
    cli: CliContext,
    retire: Callable[..., RetireReport],
    object_id: str,
    reason: str,
    database_url: str | None,
    mqtt_url: str | None,
    topic_root: str | None,
    no_push: bool,
) -> None:
    settings = cli.settings(
        PlatformSettings, database_url=database_url, mqtt_url=mqtt_url, topic_root=topic_root
    )
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        report = retire(
            conn, object_id, actor=f"cli:{getpass.getuser()}", at=utcnow(), reason=reason
        )
        pushed = [] if no_push else _push_now(conn, settings, report.gateways)
    click.echo(
        json.dumps(
            {
                "retired_devices": report.devices,
                "gateways": report.gateways,
                "alerts_cancelled": report.alerts_cancelled,
                "configs_pushed": len(pushed),
            }
        )
    )


_retire_options = [
    click.option("--reason", default="", help="why, for the audit log"),
    click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]"),
    click.option("--mqtt-url", help="MQTT broker URL [CARECIRCLE_MQTT_URL]"),
    click.option("--topic-root", help="first MQTT topic segment [CARECIRCLE_TOPIC_ROOT]"),
    click.option(
        "--no-push", is_flag=True, help="leave the config push to the scheduler's next run"
    ),
]


def _with_retire_options(f: Any) -> Any:
    for option in reversed(_retire_options):
        f = option(f)
    return f


@click.command("retire-device")
@click.argument("device_id")
@_with_retire_options
@pass_cli
def retire_device_cmd(cli: CliContext, /, device_id: str, **opts: Any) -> None:
    """Take a device out of service: history kept, removed from its gateway's config."""
    _retire(cli, retire_device, device_id, **opts)


@click.command("retire-gateway")
@click.argument("gateway_id")
@_with_retire_options
@pass_cli
def retire_gateway_cmd(cli: CliContext, /, gateway_id: str, **opts: Any) -> None:
    """Take a gateway and its devices out of service and revoke its broker secret."""
    _retire(cli, retire_gateway, gateway_id, **opts)
