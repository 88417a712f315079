"""The thin SQL side of feature extraction: rollups, rooms and residents from the store.

Reads the pinned ``rollup_1h`` table (``bucket, resident_id, site_id, device_id, code,
n, sum, min, max``) — never raw readings — and ``devices.room_id`` → ``rooms.kind``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from carecircle.common.errors import StoreError
from carecircle.ml.features.hourly import (
    ACC,
    ACCUMULATORS,
    HOUR,
    ROOM_GROUP,
    ROOMS,
    HourlyMatrix,
    empty_accumulators,
    floor_hour,
    from_accumulators,
)
from carecircle.ml.features.rows import ResidentProfile, RollupRow

Conn = psycopg.Connection[Any]
ROLLUP_TABLES = frozenset({"rollup_1h", "rollup_1m"})


def load_profiles(conn: Conn, residents: Sequence[str] | None = None) -> dict[str, ResidentProfile]:
    query = "SELECT id, site_id, care_level, conditions, lives_alone FROM residents"
    args: list[Any] = []
    if residents is not None:
        query += " WHERE id = ANY(%s)"
        args.append(list(residents))
    rows = conn.execute(query + " ORDER BY id", args).fetchall()
    return {
        str(r[0]): ResidentProfile(str(r[0]), str(r[1]), str(r[2]), tuple(r[3] or ()), bool(r[4]))
        for r in rows
    }


def load_room_kinds(conn: Conn, residents: Sequence[str] | None = None) -> dict[str, str | None]:
    query = "SELECT d.id, r.kind FROM devices d LEFT JOIN rooms r ON r.id = d.room_id"
    args: list[Any] = []
    if residents is not None:
        query += " WHERE d.resident_id = ANY(%s) OR d.site_id IN "
        query += "(SELECT site_id FROM residents WHERE id = ANY(%s))"
        args += [list(residents), list(residents)]
    return {str(r[0]): (str(r[1]) if r[1] is not None else None) for r in conn.execute(query, args)}


def read_rollups(
    conn: Conn,
    since: datetime,
    until: datetime,
    residents: Sequence[str],
    table: str = "rollup_1h",
) -> dict[str, list[RollupRow]]:
    """Rollup rows of ``residents`` with ``since <= bucket < until``, by resident."""
    if table not in ROLLUP_TABLES:
        raise StoreError(f"unknown rollup table {table!r}")
    out: dict[str, list[RollupRow]] = {r: [] for r in residents}
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT bucket, resident_id, site_id, device_id, code, n, sum, min, max "  # noqa: S608
                f"FROM {table} WHERE bucket >= %s AND bucket < %s AND resident_id = ANY(%s)",
                (since, until, list(residents)),
            )
            for row in cur:
                out[row[1]].append(
                    RollupRow(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        int(row[5]),
                        float(row[6] if row[6] is not None else 0.0),
                        float(row[7] if row[7] is not None else 0.0),
                        float(row[8] if row[8] is not None else 0.0),
                    )
                )
    except psycopg.errors.UndefinedTable as err:
        raise StoreError(
            f"{table} does not exist: the ingest rollups are not migrated on this database"
        ) from err
    return out


def residents_with_data(conn: Conn, since: datetime, until: datetime) -> list[str]:
    try:
        rows = conn.execute(
            "SELECT DISTINCT resident_id FROM rollup_1h "
            "WHERE bucket >= %s AND bucket < %s AND resident_id IS NOT NULL ORDER BY 1",
            (since, until),
        ).fetchall()
    except psycopg.errors.UndefinedTable as err:
        raise StoreError(
            "rollup_1h does not exist: the ingest rollups are not migrated on this database"
        ) from err
    return [str(r[0]) for r in rows]


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for k in range(0, len(items), size):
        yield list(items[k : k + size])


def _pivot_sql() -> str:
    """One row per (resident, hour) with the accumulators, computed in PostgreSQL."""
    group = (
        "CASE "
        + " ".join(f"WHEN rm.kind = '{k}' THEN '{g}'" for k, g in sorted(ROOM_GROUP.items()))
        + " ELSE 'other' END"
    )
    motion = [
        f"sum(r.sum) FILTER (WHERE r.code = 'motion' AND {group} = '{g}'"
        + (" OR r.code = 'bathroom_presence'" if g == "bathroom" else "")
        + ")"
        for g in ROOMS
    ]
    exprs = {
        **{f"motion_{g}": e for g, e in zip(ROOMS, motion, strict=True)},
        "door_open": "sum(r.sum) FILTER (WHERE r.code = 'door')",
        "steps": "sum(r.sum) FILTER (WHERE r.code = 'steps')",
        "bed_sum": "sum(r.sum) FILTER (WHERE r.code = 'bed_occupancy')",
        "bed_n": "sum(r.n) FILTER (WHERE r.code = 'bed_occupancy')",
        "hr_sum": "sum(r.sum) FILTER (WHERE r.code = 'heart_rate')",
        "hr_n": "sum(r.n) FILTER (WHERE r.code = 'heart_rate')",
        "hr_min": "min(r.min) FILTER (WHERE r.code = 'heart_rate')",
        "hr_max": "max(r.max) FILTER (WHERE r.code = 'heart_rate')",
        "spo2_sum": "sum(r.sum) FILTER (WHERE r.code = 'spo2')",
        "spo2_n": "sum(r.n) FILTER (WHERE r.code = 'spo2')",
        "spo2_min": "min(r.min) FILTER (WHERE r.code = 'spo2')",
        "skin_sum": "sum(r.sum) FILTER (WHERE r.code = 'skin_temperature')",
        "skin_n": "sum(r.n) FILTER (WHERE r.code = 'skin_temperature')",
        "rows": "count(*)",
    }
    assert tuple(exprs) == ACCUMULATORS
    columns = ", ".join(f"({e})::float8" for e in exprs.values())
    return (
        f"SELECT r.resident_id, r.bucket, {columns} "  # noqa: S608
        "FROM rollup_1h r LEFT JOIN devices d ON d.id = r.device_id "
        "LEFT JOIN rooms rm ON rm.id = d.room_id "
        "WHERE r.bucket >= %s AND r.bucket < %s AND r.resident_id = ANY(%s) "
        "GROUP BY r.resident_id, r.bucket"
    )


_PIVOT = _pivot_sql()
_MIN_MAX = {ACC["hr_min"]: np.inf, ACC["hr_max"]: -np.inf, ACC["spo2_min"]: np.inf}


def read_hourly(
    conn: Conn, since: datetime, until: datetime, residents: Sequence[str], tz: ZoneInfo
) -> dict[str, HourlyMatrix]:
    """The same matrices as :func:`hourly_features` over :func:`read_rollups`, but
    aggregated by hour inside PostgreSQL (one row per resident-hour instead of one per
    device and code), which is what training 1,000 residents a night needs."""
    since, until = floor_hour(since), floor_hour(until)
    hours = max(0, int((until - since) / HOUR))
    acc = {r: empty_accumulators(hours) for r in residents}
    try:
        with conn.cursor() as cur:
            cur.execute(_PIVOT, (since, until, list(residents)))
            for row in cur:
                i = int((row[1] - since) / HOUR)
                values = [0.0 if v is None else v for v in row[2:]]
                target = acc[row[0]][i]
                target[:] = values
                for j, empty in _MIN_MAX.items():
                    if row[2 + j] is None:
                        target[j] = empty
    except psycopg.errors.UndefinedTable as err:
        raise StoreError(
            "rollup_1h does not exist: the ingest rollups are not migrated on this database"
        ) from err
    return {r: from_accumulators(r, since, a, tz) for r, a in acc.items()}
