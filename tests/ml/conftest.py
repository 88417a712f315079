"""Fixtures for the ml tests: a migrated database with a test-only ``rollup_1h``.

``rollup_1h`` is created here with exactly the pinned columns, NOT by an ml
migration: the ingest branch's migration owns it.  When that migration is present,
the table already exists and is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from carecircle.ml.synthetic import SynthData
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

ROLLUP_1H = """
CREATE TABLE IF NOT EXISTS rollup_1h (
    bucket      timestamptz NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    device_id   text NOT NULL,
    code        text NOT NULL,
    n           bigint NOT NULL,
    sum         double precision,
    min         double precision,
    max         double precision
)
"""

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(scope="module")
def ml_database_url(fresh_database: Callable[[], str]) -> str:
    """A freshly migrated database of this test module, with ``rollup_1h``."""
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        conn.execute(ROLLUP_1H)
    return url


@pytest.fixture
def mldb(ml_database_url: str) -> Iterator[Conn]:
    with psycopg.connect(ml_database_url, autocommit=True) as conn:
        yield conn


def provision(conn: Conn, data: SynthData) -> None:
    """Places, sites, rooms, residents, gateways and devices for synthetic residents."""
    conn.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        "('pf', NULL, 'prefecture', 'P'), ('co', 'pf', 'county', 'C'), "
        "('tw', 'co', 'township', 'T'), ('vi', 'tw', 'village', 'V') ON CONFLICT DO NOTHING"
    )
    for rid, p in data.profiles.items():
        conn.execute(
            "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
            "VALUES (%s, 'household', 'vi', 'H', 30.1, 120.1) ON CONFLICT DO NOTHING",
            (p.site_id,),
        )
        conn.execute(
            "INSERT INTO residents (id, site_id, display_name, care_level, conditions, "
            "lives_alone) VALUES (%s, %s, 'R', %s, %s, %s) ON CONFLICT DO NOTHING",
            (rid, p.site_id, p.care_level, list(p.conditions), p.lives_alone),
        )
        conn.execute(
            "INSERT INTO gateways (id, site_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (f"gw-{rid}", p.site_id),
        )
        for dev, kind in data.room_kinds.items():
            if not dev.startswith(rid + "-"):
                continue
            room = None
            if kind is not None:
                room = f"{p.site_id}-{kind}"
                conn.execute(
                    "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (room, p.site_id, kind, kind),
                )
            conn.execute(
                "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
                "native_id, type) VALUES (%s, %s, %s, %s, %s, 'zigbee2mqtt', %s, 'sensor') "
                "ON CONFLICT DO NOTHING",
                (dev, f"gw-{rid}", p.site_id, room, rid, dev),
            )


def load_rollups(conn: Conn, data: SynthData) -> None:
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY rollup_1h (bucket, resident_id, site_id, device_id, code, n, sum, min, max) "
            "FROM STDIN"
        ) as copy,
    ):
        for r in data.rows:
            copy.write_row(
                (r.bucket, r.resident_id, r.site_id, r.device_id, r.code, r.n, r.sum, r.min, r.max)
            )
