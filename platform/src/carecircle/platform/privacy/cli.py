"""``carecircle privacy …``: export or erase a resident's data, seal personal data, make keys."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from carecircle.common.cli import CliContext, pass_cli
from carecircle.common.errors import ConfigError
from carecircle.platform.privacy.crypto import PiiCipher, new_key
from carecircle.platform.settings import PlatformSettings
from carecircle.platform.store import connect


def _settings(cli: CliContext, database_url: str | None) -> PlatformSettings:
    return cli.settings(PlatformSettings, database_url=database_url)


def cipher_of(settings: PlatformSettings, required: bool = False) -> PiiCipher | None:
    """The cipher when keys are configured; ``required`` makes missing keys an error."""
    if settings.pii_keys is None or settings.pii_index_key is None:
        if required:
            raise ConfigError(
                "set CARECIRCLE_PII_KEYS and CARECIRCLE_PII_INDEX_KEY "
                "(generate them with `carecircle privacy new-key`)"
            )
        return None
    return PiiCipher.from_settings(
        settings.pii_keys.get_secret_value(), settings.pii_index_key.get_secret_value()
    )


def _time(value: str | None, hint: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=hint) from err
    if at.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-01T00:00+08:00", param_hint=hint)
    return at


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return None
    return str(value)


_db = click.option("--database-url", help="PostgreSQL URL [CARECIRCLE_DATABASE_URL]")


@click.group("privacy")
def privacy_cli() -> None:
    """Personal data: export or erase a resident, seal names/phones/addresses, keys."""


@privacy_cli.command("export")
@_db
@click.option("--resident", "resident_id", required=True, help="resident id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="file (default stdout)"
)
@click.option("--since", help="first reading/event time to include (ISO 8601 with zone)")
@click.option("--until", help="end of readings/events (exclusive)")
@pass_cli
def export_cmd(
    cli: CliContext,
    database_url: str | None,
    resident_id: str,
    out: Path | None,
    since: str | None,
    until: str | None,
) -> None:
    """Everything held about one resident, as JSON (the right of access)."""
    from carecircle.platform.privacy.service import export_resident

    settings = _settings(cli, database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        data = export_resident(
            conn,
            resident_id,
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            cipher=cipher_of(settings),
        )
    text = json.dumps(data, default=_json_default, ensure_ascii=False, indent=2)
    if out is None:
        click.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        out.chmod(0o600)
        click.echo(f"exported resident {resident_id} to {out}", err=True)


@privacy_cli.command("delete")
@_db
@click.option("--resident", "resident_id", required=True, help="resident id")
@click.option("--reason", required=True, help="why (request reference; no names)")
@click.option("--actor", default="cli:privacy", show_default=True, help="who asked for it")
@click.option("--keep-household", is_flag=True, help="do not scrub an emptied household")
@click.option("--yes", is_flag=True, help="really erase (there is no undo)")
@pass_cli
def delete_cmd(
    cli: CliContext,
    database_url: str | None,
    resident_id: str,
    reason: str,
    actor: str,
    keep_household: bool,
    yes: bool,
) -> None:
    """Erase one resident and everything about them (the right of erasure)."""
    from carecircle.platform.privacy.service import delete_resident

    if not yes:
        raise click.UsageError("erasure cannot be undone: add --yes to confirm")
    settings = _settings(cli, database_url)
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        report = delete_resident(conn, resident_id, actor, reason, household=not keep_household)
    click.echo(
        json.dumps(
            {
                "resident_id": report.resident_id,
                "existed": report.existed,
                "counts": report.counts,
                "household_scrubbed": report.household_scrubbed,
                "audit_id": report.audit_id,
            }
        )
    )


@privacy_cli.command("encrypt-existing")
@_db
@click.option(
    "--drop-plaintext",
    is_flag=True,
    help="then remove the plaintext phone numbers and addresses (they stay sealed)",
)
@pass_cli
def encrypt_existing_cmd(cli: CliContext, database_url: str | None, drop_plaintext: bool) -> None:
    """Seal names, phone numbers and addresses into their *_enc columns (idempotent)."""
    from carecircle.platform.privacy.service import encrypt_existing

    settings = _settings(cli, database_url)
    if not settings.pii_encryption:
        raise ConfigError(
            "pii_encryption is off: set CARECIRCLE_PII_ENCRYPTION=true (with the keys) first"
        )
    cipher = cipher_of(settings, required=True)
    assert cipher is not None
    with connect(
        settings.database_url, timeout_s=settings.db_connect_timeout_s, autocommit=True
    ) as conn:
        report = encrypt_existing(conn, cipher, drop_plaintext=drop_plaintext)
    click.echo(
        json.dumps(
            {
                "sealed": report.sealed,
                "rotated": report.rotated,
                "dropped": report.dropped,
                "unreadable": report.unreadable,
            }
        )
    )


@privacy_cli.command("new-key")
def new_key_cmd() -> None:
    """Print a fresh random 256-bit key (for CARECIRCLE_PII_KEYS / _PII_INDEX_KEY)."""
    click.echo(new_key())
