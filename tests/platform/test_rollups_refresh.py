"""Rollups on plain PostgreSQL: equal to a direct aggregate, late data folded in, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from carecircle.common.contract import Topics, Uplink
from carecircle.platform.ingest import BatchWriter, Inbound
from carecircle.platform.registry import provision
from carecircle.platform.rollups import RollupRetention, apply_rollup_retention, refresh_rollups
from carecircle.platform.store import connect
from tests.platform.ingest_support import batch, item, population, readings_for

Conn = psycopg.Connection[tuple[object, ...]]

DIRECT_1M = """
SELECT date_trunc('minute', time, 'UTC') AS bucket, device_id, code,
       count(*), sum(value), min(value), max(value), max(resident_id), max(site_id)
FROM readings WHERE gateway_id = %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
DIRECT_1H = DIRECT_1M.replace("'minute'", "'hour'")
ROLLUP = """
SELECT bucket, device_id, code, n, sum, min, max, resident_id, site_id FROM {}
WHERE device_id LIKE %s ORDER BY 1, 2, 3
"""


def write(database_url: str, topics: Topics, gw: str, items: list[dict[str, object]]) -> None:
    writer = BatchWriter(lambda: connect(database_url), topics, clock=lambda: datetime.now(UTC))
    try:
        for k in range(0, len(items), 100):
            writer.write(
                [
                    Inbound(
                        topics.uplink(gw, Uplink.BATCH),
                        batch(gw, items[k : k + 100]),
                        datetime.now(UTC),
                    )
                ]
            )
    finally:
        writer.close()


def drain(db: Conn) -> None:
    while refresh_rollups(db, datetime.now(UTC)).minute_buckets:
        pass


def test_rollups_equal_a_direct_aggregate_including_late_data(db: Conn, database_url: str) -> None:
    p = f"u{uuid.uuid4().hex[:6]}"
    provision(db, population(p, gateways=1, devices=3))
    topics = Topics("unused")
    gw = f"{p}gw0"
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    write(database_url, topics, gw, readings_for(p, 0, 600, start=start, step_s=7.3))
    drain(db)
    assert (
        db.execute(ROLLUP.format("rollup_1m"), (f"{gw}-%",)).fetchall()
        == db.execute(DIRECT_1M, (gw,)).fetchall()
    )
    # late readings into minutes and hours that are already rolled up
    late = [
        item(
            gw, f"{gw}-d1", site=f"{p}hh0", res=f"{p}r0", ts=start + timedelta(seconds=s), value=200
        )
        for s in (5, 65, 3605)
    ]
    write(database_url, topics, gw, late)
    drain(db)
    direct_1m = db.execute(DIRECT_1M, (gw,)).fetchall()
    assert db.execute(ROLLUP.format("rollup_1m"), (f"{gw}-%",)).fetchall() == direct_1m
    direct_1h = db.execute(DIRECT_1H, (gw,)).fetchall()
    assert db.execute(ROLLUP.format("rollup_1h"), (f"{gw}-%",)).fetchall() == direct_1h
    assert sum(int(r[3]) for r in direct_1h) == 603  # type: ignore[call-overload]
    assert max(float(r[6]) for r in direct_1h) == 200  # type: ignore[arg-type]
    # nothing left to do: a second refresh is a no-op
    assert refresh_rollups(db, datetime.now(UTC)).minute_buckets == 0


def test_rollup_retention_drops_old_buckets(db: Conn) -> None:
    dev = f"rt{uuid.uuid4().hex[:6]}"
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    for table, age in (
        ("rollup_1m", 10),
        ("rollup_1m", 500),
        ("rollup_1h", 500),
        ("rollup_1h", 4000),
    ):
        db.execute(
            f"INSERT INTO {table} (bucket, site_id, device_id, code, n, sum, min, max) "
            "VALUES (%s, 's', %s, 'heart_rate', 1, 70, 70, 70)",
            (now - timedelta(days=age), dev),
        )
    report = apply_rollup_retention(db, now, RollupRetention.days(400, 3650))
    assert report.deleted >= 2
    left = db.execute(
        "SELECT 'm', count(*) FROM rollup_1m WHERE device_id = %s UNION ALL "
        "SELECT 'h', count(*) FROM rollup_1h WHERE device_id = %s",
        (dev, dev),
    ).fetchall()
    assert left == [("m", 1), ("h", 1)]
