"""Rollups ``rollup_1m`` / ``rollup_1h``: one row per (bucket, device_id, code) of readings.

Columns (the cross-component pin): ``bucket, resident_id, site_id, device_id, code, n,
sum, min, max``; the mean is ``sum / n``.

* **Plain PostgreSQL** — real tables.  The ingest writer marks, in the same
  transaction as the rows, each minute bucket that received readings
  (``rollup_dirty``), however late they arrived.  :func:`refresh_rollups` takes the
  marked buckets, re-aggregates those minutes from ``readings`` and then the hours
  containing them from ``rollup_1m``, and upserts both.  A reading arriving days late
  is therefore folded in at the next run, and re-running is harmless.
* **TimescaleDB** — continuous aggregates with refresh policies
  (``0101_rollups.timescale.sql``); :func:`refresh_rollups` has nothing to do, and
  :func:`apply_rollup_retention` installs retention policies instead of deleting.

Buckets are UTC minutes and hours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]

#: Advisory lock so that two refreshes never run at once (the scheduler has one leader,
#: but ``refresh_rollups`` may also be called by hand).
ROLLUP_LOCK = 0x43430101


@dataclass(frozen=True)
class RollupRetention:
    minute: timedelta
    hour: timedelta

    @classmethod
    def days(cls, minute: int, hour: int) -> RollupRetention:
        return cls(timedelta(days=minute), timedelta(days=hour))


@dataclass
class RollupReport:
    minute_buckets: int = 0
    minute_rows: int = 0
    hour_rows: int = 0
    deleted: int = 0


def _backend(conn: Conn) -> str:
    row = conn.execute(
        "SELECT value FROM carecircle_meta WHERE key = 'timeseries_backend'"
    ).fetchone()
    return str(row[0]) if row else "plain"


def mark_dirty(conn: Conn, since: datetime, until: datetime) -> int:
    """Have the rollups of ``[since, until)`` re-aggregated from ``readings``.

    Ingest marks what it writes; this is for rows that arrived another way (a bulk
    load, a backfill, an erasure).  Plain PostgreSQL: marks the minutes that hold
    readings, for the next :func:`refresh_rollups`; returns how many.  TimescaleDB:
    refreshes the continuous aggregates over the period now; returns 0.
    """
    if _backend(conn) != "plain":
        for view in ("rollup_1m", "rollup_1h"):
            conn.execute("CALL refresh_continuous_aggregate(%s, %s, %s)", (view, since, until))
        return 0
    cur = conn.execute(
        "INSERT INTO rollup_dirty (bucket) SELECT DISTINCT date_trunc('minute', time) "
        "FROM readings WHERE time >= %s AND time < %s ON CONFLICT DO NOTHING",
        (since, until),
    )
    return max(cur.rowcount, 0)


def refresh_rollups(conn: Conn, now: datetime, *, max_buckets: int = 5000) -> RollupReport:
    """Fold newly ingested readings into the rollups (plain back-end); ``conn`` autocommit.

    Handles at most ``max_buckets`` dirty minutes per call, oldest first; returns what
    it did.  ``now`` is only logged: what to refresh is what ingest marked.
    """
    report = RollupReport()
    if _backend(conn) != "plain":
        return report
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (ROLLUP_LOCK,)).fetchone()
    if not got or not got[0]:
        log.info("rollup refresh already running elsewhere; skipped")
        return report
    try:
        with conn.transaction():
            buckets = [
                r[0]
                for r in conn.execute(
                    "DELETE FROM rollup_dirty WHERE bucket IN "
                    "(SELECT bucket FROM rollup_dirty ORDER BY bucket LIMIT %s) RETURNING bucket",
                    (max_buckets,),
                ).fetchall()
            ]
            if not buckets:
                return report
            lo, hi = min(buckets), max(buckets) + timedelta(minutes=1)
            minute = conn.execute(
                """
                INSERT INTO rollup_1m AS t
                    (bucket, resident_id, site_id, device_id, code, n, sum, min, max)
                SELECT date_trunc('minute', r.time, 'UTC'), max(r.resident_id), max(r.site_id),
                       r.device_id, r.code, count(*), sum(r.value), min(r.value), max(r.value)
                FROM readings r
                WHERE r.time >= %(lo)s AND r.time < %(hi)s
                  AND date_trunc('minute', r.time, 'UTC') = ANY(%(buckets)s::timestamptz[])
                GROUP BY 1, r.device_id, r.code
                ON CONFLICT (bucket, device_id, code) DO UPDATE SET
                    resident_id = EXCLUDED.resident_id, site_id = EXCLUDED.site_id,
                    n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max
                """,
                {"lo": lo, "hi": hi, "buckets": buckets},
            )
            hours = sorted({b.replace(minute=0, second=0, microsecond=0) for b in buckets})
            hour = conn.execute(
                """
                INSERT INTO rollup_1h AS t
                    (bucket, resident_id, site_id, device_id, code, n, sum, min, max)
                SELECT date_trunc('hour', m.bucket, 'UTC'), max(m.resident_id), max(m.site_id),
                       m.device_id, m.code, sum(m.n), sum(m.sum), min(m.min), max(m.max)
                FROM rollup_1m m
                WHERE m.bucket >= %(lo)s AND m.bucket < %(hi)s
                  AND date_trunc('hour', m.bucket, 'UTC') = ANY(%(hours)s::timestamptz[])
                GROUP BY 1, m.device_id, m.code
                ON CONFLICT (bucket, device_id, code) DO UPDATE SET
                    resident_id = EXCLUDED.resident_id, site_id = EXCLUDED.site_id,
                    n = EXCLUDED.n, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max
                """,
                {"lo": hours[0], "hi": hours[-1] + timedelta(hours=1), "hours": hours},
            )
            report.minute_buckets = len(buckets)
            report.minute_rows = max(minute.rowcount, 0)
            report.hour_rows = max(hour.rowcount, 0)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ROLLUP_LOCK,))
    log.info(
        "rollups refreshed at %s: %d minute buckets, %d minute rows, %d hour rows",
        now.isoformat(),
        report.minute_buckets,
        report.minute_rows,
        report.hour_rows,
    )
    return report


def apply_rollup_retention(conn: Conn, now: datetime, retention: RollupRetention) -> RollupReport:
    """Drop rollups older than their retention (plain) or set retention policies (Timescale)."""
    report = RollupReport()
    if _backend(conn) == "timescale":
        for view, keep in (("rollup_1m", retention.minute), ("rollup_1h", retention.hour)):
            row = conn.execute(
                """
                SELECT (config ->> 'drop_after')::interval FROM timescaledb_information.jobs
                WHERE proc_name = 'policy_retention' AND hypertable_name = (
                    SELECT materialization_hypertable_name
                    FROM timescaledb_information.continuous_aggregates WHERE view_name = %s)
                """,
                (view,),
            ).fetchone()
            if row is not None and row[0] == keep:
                continue
            conn.execute("SELECT remove_retention_policy(%s, if_exists => TRUE)", (view,))
            conn.execute("SELECT add_retention_policy(%s, drop_after => %s)", (view, keep))
        return report
    for table, keep in (("rollup_1m", retention.minute), ("rollup_1h", retention.hour)):
        cur = conn.execute(
            f"DELETE FROM {table} WHERE bucket < %s",  # noqa: S608
            (now - keep,),
        )
        report.deleted += max(cur.rowcount, 0)
    if report.deleted:
        log.info("rollup retention: %d rows deleted", report.deleted)
    return report
