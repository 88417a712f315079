"""Alerts from the store as evaluation records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from carecircle.ml.evaluation.records import AlertRecord


def alerts_between(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[AlertRecord]:
    return [rec for _, rec in alerts_with_ids(conn, since, until)]


def alerts_with_ids(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[tuple[int, AlertRecord]]:
    rows = conn.execute(
        "SELECT id, kind, resident_id, opened_at, source, last_seen_at FROM alerts "
        "WHERE opened_at >= %s AND opened_at < %s ORDER BY opened_at",
        (since, until),
    ).fetchall()
    return [(int(r[0]), AlertRecord(str(r[1]), r[2], r[3], str(r[4]), r[5])) for r in rows]


def withheld_between(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[tuple[int | None, AlertRecord]]:
    """Rule findings a gate withheld, first found in [since, until): (released alert id
    or None, the record at the time the rules alone would have opened it)."""
    rows = conn.execute(
        "SELECT released_alert_id, kind, resident_id, first_at, last_seen_at "
        "FROM alert_withheld WHERE first_at >= %s AND first_at < %s ORDER BY first_at",
        (since, until),
    ).fetchall()
    return [
        (int(r[0]) if r[0] is not None else None, AlertRecord(str(r[1]), r[2], r[3], "rule", r[4]))
        for r in rows
    ]
