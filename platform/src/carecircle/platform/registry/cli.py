"""``carecircle platform provision`` and ``carecircle platform push-configs``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.contract import Topics
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.privacy.contacts import writing_cipher
from carecircle.platform.registry.service import (
    gateway_configs,
    load_provisioning,
    provision,
    publish_configs,
)
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect


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
        configs = gateway_configs(conn, report.gateways) if report.gateways else []
    pushed = 0
    if configs and not no_push:
        pushed = publish_configs(
            BrokerAddress.from_url(settings.mqtt_url), Topics(settings.topic_root), configs
        )
    click.echo(
        json.dumps(
            {"changed": report.changed, "gateways": report.gateways, "configs_pushed": pushed}
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
