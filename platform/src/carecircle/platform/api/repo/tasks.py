"""SQL of the task routes that dispatch's service does not already answer."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from carecircle.platform.api.repo import Conn


def of_alert(conn: Conn, alert_id: int) -> list[dict[str, Any]]:
    """Every task dispatch made for one alert, in the order they were offered."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT t.*, a.kind, a.severity, a.site_id, a.resident_id FROM tasks t "
            "JOIN alerts a ON a.id = t.alert_id WHERE t.alert_id = %s ORDER BY t.id",
            (alert_id,),
        ).fetchall()


def availability(conn: Conn, responder_id: str) -> str:
    row = conn.execute(
        "SELECT availability FROM responders WHERE id = %s", (responder_id,)
    ).fetchone()
    return str(row[0]) if row else ""
