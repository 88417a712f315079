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


def _add_dispatch_commands() -> None:
    from carecircle.platform.dispatch.cli import dispatcher_cmd

    platform_cli.add_command(dispatcher_cmd)


_add_dispatch_commands()


# --- API and dashboard -----------------------------------------------------------------


@platform_cli.command("serve")
@database_options
@click.option("--host", "http_host", help="listen address [CARECIRCLE_HTTP_HOST]")
@click.option("--port", "http_port", type=int, help="listen port [CARECIRCLE_HTTP_PORT]")
@click.option("--demo", "demo_mode", is_flag=True, default=None, help="allow the demo JWT secret")
@pass_cli
def serve_cmd(
    cli: CliContext,
    database_url: str | None,
    http_host: str | None,
    http_port: int | None,
    demo_mode: bool | None,
) -> None:
    """Serve the API (/api/v1, docs at /api/v1/docs) and the staff dashboard.

    One process: login rate limits and live-stream subscribers live in it.
    """
    import uvicorn

    from carecircle.platform.api.app import create_app

    settings = platform_settings(
        cli,
        database_url=database_url,
        http_host=http_host,
        http_port=http_port,
        demo_mode=demo_mode,
    )
    app = create_app(settings)  # refuses a weak JWT secret outside demo mode
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        row = conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()
    if not row or not row[0]:
        raise click.ClickException("the database is not migrated: run `carecircle db migrate`")
    click.echo(f"CareCircle dashboard: http://{settings.http_host}:{settings.http_port}/board")
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


@platform_cli.command("create-user")
@database_options
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(["admin", "staff", "responder", "family"]), required=True)
@click.option("--place", "place_id", help="admin: prefecture/county; staff: township")
@click.option("--site", "site_id", help="staff of one facility")
@click.option("--responder", "responder_id", help="responder: their responder id")
@click.option("--family-member", "family_member_id", help="family: their family member id")
@click.option("--display-name", default="")
@click.option("--locale", type=click.Choice(["zh", "en"]), default="zh")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="CARECIRCLE_NEW_USER_PASSWORD",
    help="prompted if not given [CARECIRCLE_NEW_USER_PASSWORD]",
)
@pass_cli
def create_user_cmd(
    cli: CliContext,
    database_url: str | None,
    username: str,
    role: str,
    place_id: str | None,
    site_id: str | None,
    responder_id: str | None,
    family_member_id: str | None,
    display_name: str,
    locale: str,
    password: str,
) -> None:
    """Create a dashboard/API user with one role and one scope."""
    from carecircle.platform.auth import users
    from carecircle.platform.auth.policy import Role

    settings = platform_settings(cli, database_url=database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        try:
            user = users.create_user(
                conn,
                user_id=f"u-{username}".replace("@", "_")[:64],
                username=username,
                password=password,
                role=Role(role),
                place_id=place_id,
                site_id=site_id,
                responder_id=responder_id,
                family_member_id=family_member_id,
                display_name=display_name,
                locale=locale,
            )
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--password") from err
    click.echo(f"created {user.role.value} {user.username} (id {user.id})")


# -- ingest, registry and scheduler commands (ingest engineer) ------------------------------
from carecircle.platform.ingest.cli import ingest_cmd  # noqa: E402
from carecircle.platform.registry.cli import (  # noqa: E402
    provision_cmd,
    push_configs_cmd,
    retire_device_cmd,
    retire_gateway_cmd,
)
from carecircle.platform.scheduler.cli import scheduler_cmd  # noqa: E402

platform_cli.add_command(ingest_cmd)
platform_cli.add_command(provision_cmd)
platform_cli.add_command(push_configs_cmd)
platform_cli.add_command(retire_device_cmd)
platform_cli.add_command(retire_gateway_cmd)
platform_cli.add_command(scheduler_cmd)
