"""Alerts from the store as evaluation records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from carecircle.ml.evaluation.records import AlertRecord


def alerts_between(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[AlertRecord]:
    rows = conn.execute(
        "SELECT kind, resident_id, opened_at, source, last_seen_at FROM alerts "
        "WHERE opened_at >= %s AND opened_at < %s ORDER BY opened_at",
        (since, until),
    ).fetchall()
    return [AlertRecord(str(r[0]), r[1], r[2], str(r[3]), r[4]) for r in rows]
