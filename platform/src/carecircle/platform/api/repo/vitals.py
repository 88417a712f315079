"""A resident's readings, hourly rollups, status now and daily wellbeing summary."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from carecircle.platform.api.paging import decode_cursor, encode_cursor
from carecircle.platform.api.repo import Conn


def readings(
    conn: Conn,
    resident_id: str,
    *,
    codes: list[str] | None,
    since: datetime,
    until: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Readings of the resident in [since, until), newest first, one page."""
    key = decode_cursor(cursor, 2)
    conds = [
        sql.SQL("resident_id = {}").format(sql.Literal(resident_id)),
        sql.SQL("time >= {} AND time < {}").format(sql.Literal(since), sql.Literal(until)),
    ]
    if codes:
        conds.append(sql.SQL("code = ANY({})").format(sql.Literal(codes)))
    if key is not None:
        conds.append(
            sql.SQL("(time, msg_id::text) < ({}::timestamptz, {})").format(
                sql.Literal(key[0]), sql.Literal(key[1])
            )
        )
    query = sql.SQL(
        "SELECT time, code, value, device_id, msg_id::text AS msg_id FROM readings WHERE {} "
        "ORDER BY time DESC, msg_id::text DESC LIMIT {}"
    ).format(sql.SQL(" AND ").join(conds), sql.Literal(limit + 1))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query).fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1]["time"].isoformat(), rows[-1]["msg_id"]])


def has_rollup_table(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('rollup_1h') IS NOT NULL").fetchone()
    return bool(row and row[0])


def hourly(
    conn: Conn, resident_id: str, *, codes: list[str] | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Hourly n/mean/min/max per code for the resident.

    Reads the ``rollup_1h`` table (built by ingest) when it exists; until then the same
    aggregate is computed from ``readings``.  Buckets are summed over the resident's
    devices.
    """
    source = (
        "SELECT bucket, code, n, sum, min, max FROM rollup_1h WHERE resident_id = {r} "
        "AND bucket >= date_trunc('hour', {s}::timestamptz) AND bucket < {u}{c}"
        if has_rollup_table(conn)
        else "SELECT date_trunc('hour', time) AS bucket, code, count(*) AS n, sum(value) AS sum, "
        "min(value) AS min, max(value) AS max FROM readings WHERE resident_id = {r} "
        "AND time >= date_trunc('hour', {s}::timestamptz) AND time < {u}{c} "
        "GROUP BY 1, 2, device_id"
    )
    code_cond = sql.SQL(" AND code = ANY({})").format(sql.Literal(codes)) if codes else sql.SQL("")
    inner = sql.SQL(source).format(
        r=sql.Literal(resident_id), s=sql.Literal(since), u=sql.Literal(until), c=code_cond
    )
    query = sql.SQL(
        "SELECT bucket, code, sum(n)::bigint AS n, sum(sum) / nullif(sum(n), 0) AS mean, "
        "min(min) AS min, max(max) AS max FROM ({}) AS src "
        "GROUP BY bucket, code ORDER BY bucket, code"
    ).format(inner)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query).fetchall()


def status_now(conn: Conn, resident_id: str, now: datetime) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        res = cur.execute(
            "SELECT id, presence, presence_until FROM residents WHERE id = %s", (resident_id,)
        ).fetchone()
        assert res is not None
        last = cur.execute(
            "SELECT max(time) AS last_activity FROM readings WHERE resident_id = %s "
            "AND code IN ('motion', 'door', 'bed_occupancy', 'bathroom_presence', 'steps') "
            "AND value > 0 AND time > %s - interval '7 days' AND time <= %s",
            (resident_id, now, now),
        ).fetchone()
        alerts = cur.execute(
            "SELECT count(*) AS n, max(array_position(ARRAY['low','medium','high','critical'], "
            "severity)) AS worst FROM alerts WHERE resident_id = %s "
            "AND status NOT IN ('resolved', 'cancelled')",
            (resident_id,),
        ).fetchone()
        devices = cur.execute(
            "SELECT count(*) FILTER (WHERE status = 'online') AS online, "
            "count(*) FILTER (WHERE status = 'offline') AS offline, "
            "min(battery) AS lowest_battery FROM devices WHERE resident_id = %s "
            "OR (site_id = (SELECT site_id FROM residents WHERE id = %s) AND resident_id IS NULL)",
            (resident_id, resident_id),
        ).fetchone()
    assert last is not None and alerts is not None and devices is not None
    levels = ["low", "medium", "high", "critical"]
    return {
        "resident_id": res["id"],
        "presence": res["presence"],
        "presence_until": res["presence_until"],
        "last_activity": last["last_activity"],
        "active_alerts": int(alerts["n"]),
        "worst_active_severity": levels[alerts["worst"] - 1] if alerts["worst"] else None,
        "devices_online": int(devices["online"]),
        "devices_offline": int(devices["offline"]),
        "lowest_battery": devices["lowest_battery"],
        "as_of": now,
    }


def daily_summary(
    conn: Conn, resident_id: str, start: datetime, *, include_vitals: bool
) -> dict[str, Any]:
    """One day [start, start + 24 h) of a resident's life, in a few numbers."""
    end = start + timedelta(days=1)
    with conn.cursor(row_factory=dict_row) as cur:
        act = cur.execute(
            "SELECT coalesce(sum(value) FILTER (WHERE code = 'steps'), 0) AS steps, "
            "count(*) FILTER (WHERE code = 'motion' AND value > 0) AS motion_events, "
            "count(DISTINCT date_trunc('hour', time)) FILTER "
            "(WHERE code IN ('motion','door','bathroom_presence','steps') AND value > 0) "
            "AS active_hours, "
            "count(*) FILTER (WHERE code = 'door' AND value > 0) AS door_openings, "
            "count(*) FILTER (WHERE code = 'bathroom_presence' AND value > 0) AS bathroom_visits "
            "FROM readings WHERE resident_id = %s AND time >= %s AND time < %s",
            (resident_id, start, end),
        ).fetchone()
        alerts = cur.execute(
            "SELECT kind, severity, status, opened_at FROM alerts WHERE resident_id = %s "
            "AND opened_at >= %s AND opened_at < %s ORDER BY opened_at",
            (resident_id, start, end),
        ).fetchall()
        vitals: list[dict[str, Any]] = []
        if include_vitals:
            vitals = cur.execute(
                "SELECT code, count(*) AS n, avg(value) AS mean, min(value) AS min, "
                "max(value) AS max FROM readings WHERE resident_id = %s AND time >= %s "
                "AND time < %s AND code IN ('heart_rate', 'spo2', 'respiratory_rate', "
                "'body_temperature', 'skin_temperature') GROUP BY code ORDER BY code",
                (resident_id, start, end),
            ).fetchall()
    assert act is not None
    return {
        "resident_id": resident_id,
        "start": start,
        "end": end,
        "steps": int(act["steps"]),
        "motion_events": int(act["motion_events"]),
        "active_hours": int(act["active_hours"]),
        "door_openings": int(act["door_openings"]),
        "bathroom_visits": int(act["bathroom_visits"]),
        "alerts": alerts,
        "vitals": vitals if include_vitals else None,
    }
