"""``carecircle db …`` and ``carecircle platform …`` commands."""

from __future__ import annotations

import json
from typing import Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.clock import utcnow
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention, backend_for


def database_options(func: Any) -> Any:
    func = click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")(func)
    return func


def platform_settings(cli: CliContext, **flags: Any) -> PlatformSettings:
    return cli.settings(PlatformSettings, **flags)


def retention_of(settings: PlatformSettings) -> Retention:
    return Retention.days(settings.raw_retention_days, settings.event_retention_days)


@click.group("db")
def db_cli() -> None:
    """Database schema and time-series upkeep."""


@db_cli.command("migrate")
@database_options
@click.option(
    "--timeseries-backend",
    type=click.Choice(["auto", "timescale", "plain"]),
    help="TimescaleDB or plain partitioning (default auto) [CARECIRCLE_TIMESERIES_BACKEND]",
)
@pass_cli
def migrate_cmd(cli: CliContext, database_url: str | None, timeseries_backend: str | None) -> None:
    """Create or update the schema. Safe to run again: a second run changes nothing."""
    settings = platform_settings(
        cli, database_url=database_url, timeseries_backend=timeseries_backend
    )
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        result = migrate(
            conn,
            now=utcnow(),
            retention=retention_of(settings),
            partition_days_ahead=settings.partition_days_ahead,
            preference=settings.timeseries_backend,
        )
    if result.applied:
        click.echo(
            f"applied {len(result.applied)} migrations ({', '.join(result.applied)}) "
            f"on the {result.backend} time-series back-end"
        )
    else:
        click.echo(f"schema is up to date ({result.backend} time-series back-end)")
    if result.maintenance.created:
        click.echo(f"prepared {len(result.maintenance.created)} time partitions")


@db_cli.command("maintain")
@database_options
@pass_cli
def maintain_cmd(cli: CliContext, database_url: str | None) -> None:
    """Prepare partitions ahead and drop data past its retention (plain PostgreSQL)."""
    settings = platform_settings(cli, database_url=database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        row = conn.execute(
            "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
        ).fetchone()
        if row is None:
            raise click.ClickException("the database is not migrated: run `carecircle db migrate`")
        backend = backend_for(str(row[0]))
        backend.apply_policies(conn, retention_of(settings))
        report = backend.maintain(
            conn, utcnow(), retention_of(settings), settings.partition_days_ahead
        )
    click.echo(
        json.dumps(
            {
                "backend": backend.name,
                "created": report.created,
                "dropped": report.dropped,
                "moved_rows": report.moved_rows,
                "expired_default_rows": report.expired_default_rows,
            }
        )
    )


@db_cli.command("status")
@database_options
@pass_cli
def status_cmd(cli: CliContext, database_url: str | None) -> None:
    """Show the back-end, applied migrations and row counts."""
    settings = platform_settings(cli, database_url=database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        meta = conn.execute("SELECT to_regclass('carecircle_meta') IS NOT NULL").fetchone()
        if not meta or not meta[0]:
            click.echo("not migrated: run `carecircle db migrate`")
            return
        backend = conn.execute(
            "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
        ).fetchone()
        versions = conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
    click.echo(f"time-series back-end: {backend[0] if backend else 'unknown'}")
    for version, name, applied_at in versions:
        click.echo(f"  {version:04d}_{name}  applied {applied_at:%Y-%m-%d %H:%M:%S %Z}")


@click.group("platform")
def platform_cli() -> None:
    """The platform: ingest, alerts, dispatch, API and dashboard."""


@platform_cli.command("show-config")
@database_options
@pass_cli
def show_config(cli: CliContext, database_url: str | None) -> None:
    """Print the effective platform settings (passwords hidden)."""
    settings = platform_settings(cli, database_url=database_url)
    data = settings.model_dump(mode="json")
    for key in ("database_url", "mqtt_url"):
        url = str(data[key])
        if "@" in url and ":" in url.split("//", 1)[1].split("@", 1)[0]:
            scheme, rest = url.split("//", 1)
            creds, host = rest.split("@", 1)
            data[key] = f"{scheme}//{creds.split(':', 1)[0]}:***@{host}"
    click.echo(json.dumps(data, indent=2))


# -- ingest, registry and scheduler commands (ingest engineer) ------------------------------
from carecircle.platform.ingest.cli import ingest_cmd  # noqa: E402
from carecircle.platform.registry.cli import provision_cmd, push_configs_cmd  # noqa: E402
from carecircle.platform.scheduler.cli import scheduler_cmd  # noqa: E402

platform_cli.add_command(ingest_cmd)
platform_cli.add_command(provision_cmd)
platform_cli.add_command(push_configs_cmd)
platform_cli.add_command(scheduler_cmd)
