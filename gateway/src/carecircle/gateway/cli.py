"""``carecircle gateway …`` commands."""

from __future__ import annotations

import json

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.gateway.settings import GatewaySettings


@click.group("gateway")
def gateway() -> None:
    """The edge gateway in a household, day-care centre or nursing home."""


@gateway.command("show-config")
@click.option("--gateway-id", help="this gateway's id [CARECIRCLE_GATEWAY_ID]")
@pass_cli
def show_config(cli: CliContext, gateway_id: str | None) -> None:
    """Print the effective gateway settings."""
    settings = cli.settings(GatewaySettings, gateway_id=gateway_id)
    click.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
