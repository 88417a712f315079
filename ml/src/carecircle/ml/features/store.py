"""The thin SQL side of feature extraction: rollups, rooms and residents from the store.

Reads the pinned ``rollup_1h`` table (``bucket, resident_id, site_id, device_id, code,
n, sum, min, max``) — never raw readings — and ``devices.room_id`` → ``rooms.kind``;
and, since session 5, the bands' worn flags from their battery statuses in ``events``
(the rollups hold readings only; nothing else says a band off the wrist is in range).

Whose rows are whose: a rollup row carries the ``resident_id`` of its device at the
time (a wearable, a nursing-home bed mat).  A home's room sensors (PIR, door) belong to
nobody (``resident_id`` NULL): like the alerts' absence checks, they count for every
resident of their site, except a sensor in a room that is some resident's own room
(``residents.room_id``, nursing homes), which counts only for the people of that room.
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
    FEATURE_CODES,
    HOUR,
    ROOM_GROUP,
    ROOMS,
    WORN_CODE,
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


#: Rollup rows of the residents in %(res)s, own and shared, as (rid, row columns…),
#: and their bands' worn-flag reports (battery statuses in ``events`` carrying
#: ``attrs.worn``, as the alert engine and the gate read them) as rows of code
#: ``worn`` per bucket: ``n`` reports, ``sum`` of them on the wrist.
_ROWS_SQL = """
WITH who AS (
    SELECT id, site_id, room_id FROM residents WHERE id = ANY(%(res)s)
), shared AS (
    -- a site sensor nobody owns; in a nursing home a sensor in someone's own room
    -- belongs to the people of that room only
    SELECT w.id AS rid, d.id AS device_id
    FROM who w JOIN devices d ON d.site_id = w.site_id AND d.resident_id IS NULL
    WHERE d.room_id IS NULL OR d.room_id IS NOT DISTINCT FROM w.room_id
       OR NOT EXISTS (SELECT 1 FROM residents o WHERE o.room_id = d.room_id)
), site_rows AS MATERIALIZED (
    -- one range scan of the window, joined by hash below: a per-device index probe
    -- over the bucket range is what the planner picks with stale device statistics
    SELECT r.* FROM {table} r
    WHERE r.bucket >= %(since)s AND r.bucket < %(until)s AND r.resident_id IS NULL
      AND r.code = ANY(%(codes)s) AND r.site_id IN (SELECT site_id FROM who)
)
SELECT r.resident_id AS rid, r.bucket, r.device_id, r.code, r.n, r.sum, r.min, r.max,
       r.site_id
FROM {table} r
WHERE r.bucket >= %(since)s AND r.bucket < %(until)s AND r.resident_id = ANY(%(res)s)
  AND r.code = ANY(%(codes)s)
UNION ALL
SELECT s.rid, r.bucket, r.device_id, r.code, r.n, r.sum, r.min, r.max, r.site_id
FROM site_rows r JOIN shared s ON s.device_id = r.device_id
UNION ALL
SELECT e.resident_id,
       date_trunc('{unit}', e.time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       e.device_id, 'worn', count(*),
       count(*) FILTER (WHERE (e.attrs->>'worn')::boolean),
       min(CASE WHEN (e.attrs->>'worn')::boolean THEN 1 ELSE 0 END),
       max(CASE WHEN (e.attrs->>'worn')::boolean THEN 1 ELSE 0 END),
       e.site_id
FROM events e
WHERE e.resident_id = ANY(%(res)s) AND e.time >= %(since)s AND e.time < %(until)s
  AND e.code = 'battery' AND e.kind = 'status' AND jsonb_typeof(e.attrs->'worn') = 'boolean'
GROUP BY 1, 2, 3, 9
"""

_UNIT = {"rollup_1h": "hour", "rollup_1m": "minute"}


def _rows_args(since: datetime, until: datetime, residents: Sequence[str]) -> dict[str, Any]:
    return {"res": list(residents), "since": since, "until": until, "codes": list(FEATURE_CODES)}


def read_rollups(
    conn: Conn,
    since: datetime,
    until: datetime,
    residents: Sequence[str],
    table: str = "rollup_1h",
) -> dict[str, list[RollupRow]]:
    """Rollup rows of ``residents`` with ``since <= bucket < until``, by resident: their
    own devices' rows and their site's shared sensors' rows (with ``resident_id`` set
    to the resident they are read for)."""
    if table not in ROLLUP_TABLES:
        raise StoreError(f"unknown rollup table {table!r}")
    out: dict[str, list[RollupRow]] = {r: [] for r in residents}
    try:
        with conn.cursor() as cur:
            cur.execute(
                _ROWS_SQL.format(table=table, unit=_UNIT[table]),
                _rows_args(since, until, residents),
            )
            for rid, bucket, device, code, n, total, lo, hi, site in cur:
                out[rid].append(
                    RollupRow(
                        bucket,
                        rid,
                        site,
                        device,
                        code,
                        int(n),
                        float(total if total is not None else 0.0),
                        float(lo if lo is not None else 0.0),
                        float(hi if hi is not None else 0.0),
                    )
                )
    except psycopg.errors.UndefinedTable as err:
        raise StoreError(
            f"{table} does not exist: the ingest rollups are not migrated on this database"
        ) from err
    return out


def residents_with_data(conn: Conn, since: datetime, until: datetime) -> list[str]:
    """Residents with rollup rows of their own or of their site's shared sensors."""
    try:
        rows = conn.execute(
            """
            WITH sites AS (
                SELECT DISTINCT site_id FROM rollup_1h
                WHERE bucket >= %(since)s AND bucket < %(until)s AND resident_id IS NULL
                  AND code = ANY(%(codes)s)
            )
            SELECT DISTINCT resident_id FROM rollup_1h
            WHERE bucket >= %(since)s AND bucket < %(until)s AND resident_id IS NOT NULL
              AND code = ANY(%(codes)s)
            UNION
            SELECT r.id FROM residents r JOIN sites s ON s.site_id = r.site_id
            ORDER BY 1
            """,
            {"since": since, "until": until, "codes": list(FEATURE_CODES)},
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
        "steps_n": "sum(r.n) FILTER (WHERE r.code = 'steps')",
        "steps_min": "min(r.min) FILTER (WHERE r.code = 'steps')",
        "steps_max": "max(r.max) FILTER (WHERE r.code = 'steps')",
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
        "rows": f"count(*) FILTER (WHERE r.code <> '{WORN_CODE}')",
        "worn_n": f"sum(r.n) FILTER (WHERE r.code = '{WORN_CODE}')",
        "worn_sum": f"sum(r.sum) FILTER (WHERE r.code = '{WORN_CODE}')",
    }
    assert tuple(exprs) == ACCUMULATORS
    columns = ", ".join(f"({e})::float8" for e in exprs.values())
    return (
        f"SELECT r.rid, r.bucket, {columns} "  # noqa: S608
        f"FROM ({_ROWS_SQL.format(table='rollup_1h', unit='hour')}) r "
        "LEFT JOIN devices d ON d.id = r.device_id "
        "LEFT JOIN rooms rm ON rm.id = d.room_id "
        "GROUP BY r.rid, r.bucket"
    )


_PIVOT = _pivot_sql()
_MIN_MAX = {
    ACC["hr_min"]: np.inf,
    ACC["hr_max"]: -np.inf,
    ACC["spo2_min"]: np.inf,
    ACC["steps_min"]: np.inf,
    ACC["steps_max"]: -np.inf,
}


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
            cur.execute(_PIVOT, _rows_args(since, until, residents))
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
