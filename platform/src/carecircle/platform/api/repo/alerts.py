"""Alert lists and timelines (reads); changes go through alerts.repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from carecircle.platform.api.paging import decode_cursor, encode_cursor
from carecircle.platform.api.repo import Conn
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Principal

ALERT_COLS = (
    "a.id, a.subject, a.resident_id, a.site_id, a.device_id, a.kind, a.severity, a.status, "
    "a.outcome, a.source, a.detector, a.message, a.explanation, a.occurrences, a.opened_at, "
    "a.last_seen_at, a.snoozed_until, a.acknowledged_at, a.dispatched_at, a.on_scene_at, "
    "a.closed_at, a.updated_at"
)


@dataclass(frozen=True)
class AlertFilter:
    status: list[str] | None = None
    kind: list[str] | None = None
    severity: list[str] | None = None
    site_id: str | None = None
    resident_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    active: bool | None = None


def list_alerts(
    conn: Conn, p: Principal, f: AlertFilter, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Alerts in scope matching ``f``, newest opened first."""
    conds: list[sql.Composable] = [scope.alerts(p, "a")]
    for col, values in (("status", f.status), ("kind", f.kind), ("severity", f.severity)):
        if values:
            conds.append(sql.SQL("a.{} = ANY({})").format(sql.Identifier(col), sql.Literal(values)))
    for col, value in (("site_id", f.site_id), ("resident_id", f.resident_id)):
        if value:
            conds.append(sql.SQL("a.{} = {}").format(sql.Identifier(col), sql.Literal(value)))
    if f.since is not None:
        conds.append(sql.SQL("a.opened_at >= {}").format(sql.Literal(f.since)))
    if f.until is not None:
        conds.append(sql.SQL("a.opened_at < {}").format(sql.Literal(f.until)))
    if f.active is not None:
        conds.append(
            sql.SQL("a.status {} ('resolved', 'cancelled')").format(
                sql.SQL("NOT IN" if f.active else "IN")
            )
        )
    key = decode_cursor(cursor, 2)
    if key is not None:
        conds.append(
            sql.SQL("(a.opened_at, a.id) < ({}::timestamptz, {}::bigint)").format(
                sql.Literal(str(key[0])), sql.Literal(int(key[1]))
            )
        )
    query = sql.SQL(
        "SELECT " + ALERT_COLS + ", r.display_name AS resident_name, s.name AS site_name, "
        "s.lat AS site_lat, s.lon AS site_lon "
        "FROM alerts a JOIN sites s ON s.id = a.site_id "
        "LEFT JOIN residents r ON r.id = a.resident_id "
        "WHERE {} ORDER BY a.opened_at DESC, a.id DESC LIMIT {}"
    ).format(sql.SQL(" AND ").join(conds), sql.Literal(limit + 1))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query).fetchall()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1]["opened_at"].isoformat(), rows[-1]["id"]])


def detail(conn: Conn, alert_id: int) -> dict[str, Any]:
    """One alert with its timeline: transitions, comments and assigned responders."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT " + ALERT_COLS + ", r.display_name AS resident_name, s.name AS site_name "
            "FROM alerts a JOIN sites s ON s.id = a.site_id "
            "LEFT JOIN residents r ON r.id = a.resident_id WHERE a.id = %s",
            (alert_id,),
        ).fetchone()
        assert row is not None
        timeline = cur.execute(
            "SELECT at, 'transition' AS type, actor, from_status, to_status, note AS text "
            "FROM alert_transitions WHERE alert_id = %(id)s "
            "UNION ALL SELECT at, 'comment', actor, NULL, NULL, body "
            "FROM alert_comments WHERE alert_id = %(id)s "
            "UNION ALL SELECT assigned_at, 'assignment', assigned_by, NULL, NULL, responder_id "
            "FROM alert_assignments WHERE alert_id = %(id)s ORDER BY 1, 2",
            {"id": alert_id},
        ).fetchall()
        responders = [
            r["responder_id"]
            for r in cur.execute(
                "SELECT responder_id FROM alert_assignments WHERE alert_id = %s ORDER BY 1",
                (alert_id,),
            ).fetchall()
        ]
    return {**row, "timeline": timeline, "responders": responders}
