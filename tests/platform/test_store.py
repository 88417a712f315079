"""Migrations on a real PostgreSQL: idempotent, both time-series back-ends, partitions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from carecircle.common.errors import ConfigError
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.migrate import load_migrations
from carecircle.platform.store.timeseries import PlainBackend, Retention

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RET = Retention.days(90, 730)

SNAPSHOT = """
SELECT 'col', table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'idx', indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'con', conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
  WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'mig', version::text || checksum FROM schema_migrations
UNION ALL SELECT 'rel', relname || ':' || relkind::text FROM pg_class
  WHERE relnamespace = 'public'::regnamespace
ORDER BY 1, 2
"""


def snapshot(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute(SNAPSHOT).fetchall()


def test_migrate_twice_changes_nothing(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        first = migrate(conn, now=NOW, retention=RET)
        assert first.applied[:2] == ["0001_core", "0002_timeseries"]
        assert first.applied == [
            f"{m.version:04d}_{m.name}" for m in load_migrations(first.backend)
        ]
        assert first.backend in {"plain", "timescale"}
        assert first.applied == [
            f"{m.version:04d}_{m.name}" for m in load_migrations(first.backend)
        ]
        before = snapshot(conn)
        second = migrate(conn, now=NOW, retention=RET)
        assert second.applied == [] and not second.changed
        assert snapshot(conn) == before


def test_schema_has_the_domain_tables(db: psycopg.Connection[tuple[object, ...]]) -> None:
    names = {
        r[0]
        for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
        ).fetchall()
    }
    assert {
        "places",
        "sites",
        "households",
        "facilities",
        "rooms",
        "residents",
        "gateways",
        "devices",
        "readings",
        "events",
        "alerts",
        "alert_transitions",
        "responders",
        "family_members",
        "family_links",
        "audit_log",
        "dead_letters",
    } <= names


def seed_places(db: psycopg.Connection[tuple[object, ...]], p: str) -> None:
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )


def test_place_hierarchy_is_enforced(db: psycopg.Connection[tuple[object, ...]]) -> None:
    p = f"h{uuid.uuid4().hex[:6]}"
    seed_places(db, p)
    with pytest.raises(psycopg.errors.CheckViolation, match="village must sit directly under"):
        db.execute(
            f"INSERT INTO places (id, parent_id, level, name) "
            f"VALUES ('{p}bad', '{p}co', 'village', 'x')"
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            f"INSERT INTO places (id, parent_id, level, name) "
            f"VALUES ('{p}orphan', NULL, 'county', 'x')"
        )


def test_readings_are_idempotent_by_message_id(db: psycopg.Connection[tuple[object, ...]]) -> None:
    mid = uuid.uuid4()
    now = datetime.now(UTC)
    for _ in range(3):
        db.execute(
            "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, site_id, "
            "code, value) VALUES (%s, %s, %s, 'gw', 'dev', 'site', 'heart_rate', 70) "
            "ON CONFLICT DO NOTHING",
            (now, now, mid),
        )
    row = db.execute("SELECT count(*) FROM readings WHERE msg_id = %s", (mid,)).fetchone()
    assert row == (1,)


def test_one_active_alert_per_subject_and_kind(db: psycopg.Connection[tuple[object, ...]]) -> None:
    p = f"a{uuid.uuid4().hex[:6]}"
    seed_places(db, p)
    db.execute(
        f"INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        f"VALUES ('{p}hh', 'household', '{p}vi', 'H', 30.1, 120.1)"
    )
    insert = (
        "INSERT INTO alerts (subject, site_id, kind, severity, detector, opened_at, "
        "last_seen_at) VALUES (%s, %s, 'fall', 'critical', 'rule:fall', now(), now()) "
        "RETURNING id"
    )
    first = db.execute(insert, (f"{p}r1", f"{p}hh")).fetchone()
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, (f"{p}r1", f"{p}hh"))
    assert first is not None
    db.execute("UPDATE alerts SET status = 'resolved' WHERE id = %s", (first[0],))
    db.execute(insert, (f"{p}r1", f"{p}hh"))


def test_plain_maintenance_moves_stray_rows_and_drops_expired(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        result = migrate(
            conn,
            now=NOW,
            retention=Retention.days(3, 30),
            preference="plain",
            partition_days_ahead=2,
        )
        assert result.backend == "plain"
        assert "readings_p20261129" in result.maintenance.created
        later = NOW + timedelta(days=10)
        conn.execute(
            "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, site_id, "
            "code, value) VALUES (%s, now(), gen_random_uuid(), 'gw', 'dev', 's', 'steps', 5)",
            (later,),
        )
        in_default = conn.execute("SELECT count(*) FROM readings_default").fetchone()
        assert in_default == (1,)
        report = PlainBackend().maintain(conn, later, Retention.days(3, 30), 2)
        assert "readings_p20261209" in report.created and report.moved_rows == 1
        assert "readings_p20261129" in report.dropped
        assert conn.execute("SELECT count(*) FROM readings_default").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM readings_p20261209").fetchone() == (1,)
        assert not PlainBackend().maintain(conn, later, Retention.days(3, 30), 2).changed


def test_both_backends_have_every_migration() -> None:
    plain = load_migrations("plain")
    timescale = load_migrations("timescale")
    assert [m.version for m in plain] == [m.version for m in timescale]
    ts_sql = next(m for m in timescale if m.name == "timeseries").sql
    assert "create_hypertable('readings'" in ts_sql and "add_compression_policy" in ts_sql
    plain_sql = next(m for m in plain if m.name == "timeseries").sql
    assert "PARTITION BY RANGE (time)" in plain_sql


def timescale_available() -> bool:
    import os

    url = os.environ.get("CARECIRCLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.skipif(not timescale_available(), reason="server has no TimescaleDB extension")
def test_timescale_readings_is_a_hypertable(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        assert migrate(conn, now=NOW, retention=RET).backend == "timescale"
        row = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables "
            "WHERE hypertable_name IN ('readings', 'events')"
        ).fetchone()
        assert row == (2,)
        assert not migrate(conn, now=NOW, retention=RET).changed


def test_explicit_timescale_without_extension_is_a_config_error(
    fresh_database: Callable[[], str],
) -> None:
    if timescale_available():
        pytest.skip("server has TimescaleDB")
    url = fresh_database()
    with connect(url, autocommit=True) as conn, pytest.raises(ConfigError, match="timescaledb"):
        migrate(conn, now=NOW, retention=RET, preference="timescale")
