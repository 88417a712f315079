"""Apply the SQL migrations in ``migrations/`` in order, once each.

Files are named ``NNNN_name.sql``; a version that differs between TimescaleDB and
plain PostgreSQL has two files instead, ``NNNN_name.timescale.sql`` and
``NNNN_name.plain.sql``.  The back-end is chosen once, on the first migration of a
database (TimescaleDB when the server offers it, unless settings say otherwise),
and recorded in ``carecircle_meta`` so it never flips.  Running ``migrate`` again
changes nothing.  A session advisory lock keeps two migrators from racing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from typing import Literal

import psycopg

from carecircle.common.errors import ConfigError, StoreError
from carecircle.platform.store.timeseries import (
    Conn,
    MaintenanceReport,
    Retention,
    backend_for,
)

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x43430001
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$")
BackendChoice = Literal["auto", "timescale", "plain"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variant: str | None
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrationResult:
    backend: str
    applied: list[str] = field(default_factory=list)
    policies_changed: bool = False
    maintenance: MaintenanceReport = field(default_factory=MaintenanceReport)

    @property
    def changed(self) -> bool:
        return bool(self.applied) or self.policies_changed or self.maintenance.changed


def load_migrations(backend: str) -> list[Migration]:
    """The migrations for ``backend``, in version order."""
    by_version: dict[int, dict[str | None, Migration]] = {}
    for entry in files("carecircle.platform.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version, name, variant = int(match[1]), match[2], match[3]
        by_version.setdefault(version, {})[variant] = Migration(
            version, name, variant, entry.read_text(encoding="utf-8")
        )
    out = []
    for version in sorted(by_version):
        variants = by_version[version]
        if None in variants and len(variants) > 1:
            raise StoreError(f"migration {version:04d} has both a generic and a variant file")
        if None not in variants and set(variants) != {"plain", "timescale"}:
            raise StoreError(f"migration {version:04d} needs both .plain and .timescale files")
        out.append(variants.get(None) or variants[backend])
    return out


def _timescale_available(conn: Conn) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    ).fetchone()
    return bool(row and row[0])


def _choose_backend(conn: Conn, preference: BackendChoice) -> str:
    row = conn.execute(
        "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
    ).fetchone()
    if row is not None:
        chosen = str(row[0])
        if preference not in ("auto", chosen):
            raise ConfigError(
                f"this database already uses the {chosen!r} time-series back-end; "
                f"timeseries_backend={preference!r} cannot change it"
            )
        return chosen
    available = _timescale_available(conn)
    if preference == "timescale" and not available:
        raise ConfigError(
            "timeseries_backend='timescale' but the server has no timescaledb extension; "
            "install TimescaleDB or use 'auto'/'plain'"
        )
    chosen = "plain"
    if preference != "plain" and available:
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            chosen = "timescale"
        except psycopg.Error as err:
            if preference == "timescale":
                raise ConfigError(f"cannot enable TimescaleDB: {err}") from err
            log.warning(
                "TimescaleDB is installed but cannot be enabled (%s); "
                "using plain PostgreSQL partitioning",
                err,
            )
    conn.execute(
        "INSERT INTO carecircle_meta (key, value) VALUES ('timeseries_backend', %s)", (chosen,)
    )
    log.info("time-series back-end: %s", chosen)
    return chosen


def migrate(
    conn: Conn,
    *,
    now: datetime,
    retention: Retention,
    partition_days_ahead: int = 7,
    preference: BackendChoice = "auto",
) -> MigrationResult:
    """Bring the schema up to date; ``conn`` must be in autocommit mode."""
    if not conn.autocommit:
        raise StoreError("migrate() needs an autocommit connection")
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            return _migrate_locked(conn, now, retention, partition_days_ahead, preference)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    except psycopg.Error as err:
        raise StoreError(f"migration failed: {err}") from err


def _migrate_locked(
    conn: Conn,
    now: datetime,
    retention: Retention,
    days_ahead: int,
    preference: BackendChoice,
) -> MigrationResult:
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS carecircle_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                variant    text,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        backend_name = _choose_backend(conn, preference)
    result = MigrationResult(backend=backend_name)
    applied = {
        int(v): str(c)  # type: ignore[call-overload]
        for v, c in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    }
    for migration in load_migrations(backend_name):
        label = f"{migration.version:04d}_{migration.name}"
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise StoreError(
                    f"migration {label} was changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, variant, checksum) "
                "VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, migration.variant, migration.checksum),
            )
        log.info("applied migration %s", label)
        result.applied.append(label)
    backend = backend_for(backend_name)
    result.policies_changed = backend.apply_policies(conn, retention)
    result.maintenance = backend.maintain(conn, now, retention, days_ahead)
    return result
