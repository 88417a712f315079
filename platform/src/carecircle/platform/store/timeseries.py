"""One interface over the two ways CareCircle keeps time series.

* :class:`TimescaleBackend` — TimescaleDB hypertables; compression, retention
  (and, later, continuous aggregates) run as TimescaleDB background policies.
* :class:`PlainBackend` — PostgreSQL native range partitioning; partitions are
  prepared ahead and dropped after the retention period by :meth:`maintain`,
  which the platform's scheduler runs periodically (and ``db migrate`` runs once).

Callers use :func:`backend_for` and never need to know which one they have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Advisory-lock key so two platform instances never maintain partitions at once.
MAINTENANCE_LOCK = 0x43430003


@dataclass(frozen=True)
class SeriesTable:
    name: str
    #: Partition (plain) or chunk (TimescaleDB) width.
    interval: timedelta


SERIES_TABLES: tuple[SeriesTable, ...] = (
    SeriesTable("readings", timedelta(days=1)),
    SeriesTable("events", timedelta(days=7)),
)


@dataclass(frozen=True)
class Retention:
    """How long raw rows are kept, per time-series table."""

    by_table: dict[str, timedelta]

    @classmethod
    def days(cls, readings: int, events: int) -> Retention:
        return cls({"readings": timedelta(days=readings), "events": timedelta(days=events)})


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_rows: int = 0
    expired_default_rows: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.dropped or self.moved_rows or self.expired_default_rows)


Conn = psycopg.Connection[tuple[object, ...]]


class TimeSeriesBackend(Protocol):
    name: str

    def apply_policies(self, conn: Conn, retention: Retention) -> bool:
        """Make retention (and compression) policies match ``retention``; True if changed."""
        ...

    def maintain(
        self, conn: Conn, now: datetime, retention: Retention, days_ahead: int
    ) -> MaintenanceReport:
        """Periodic upkeep: prepare partitions ahead, drop expired data."""
        ...


def _floor(t: datetime, interval: timedelta) -> datetime:
    steps = (t - EPOCH) // interval
    return EPOCH + steps * interval


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m%d}"


class PlainBackend:
    """Native range partitioning, maintained by :meth:`maintain`."""

    name = "plain"

    def apply_policies(self, conn: Conn, retention: Retention) -> bool:
        # Retention is enforced by maintain(); nothing is stored in the server.
        return False

    def _partitions(self, conn: Conn, table: str) -> dict[str, datetime]:
        rows = conn.execute(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s AND p.relnamespace = 'public'::regnamespace
            """,
            (table,),
        ).fetchall()
        out: dict[str, datetime] = {}
        prefix = f"{table}_p"
        for (name,) in rows:
            assert isinstance(name, str)
            if name.startswith(prefix):
                out[name] = datetime.strptime(name[len(prefix) :], "%Y%m%d").replace(tzinfo=UTC)
        return out

    def _create(self, conn: Conn, table: str, start: datetime, end: datetime) -> int:
        """Create one partition; rows already caught by the default partition move into it."""
        name = partition_name(table, start)
        default = sql.Identifier(f"{table}_default")
        ident = sql.Identifier(name)
        parent = sql.Identifier(table)
        with conn.transaction():
            moved = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE time >= %s AND time < %s").format(default),
                (start, end),
            ).fetchone()
            count = int(moved[0]) if moved else 0  # type: ignore[call-overload]
            if count == 0:
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                        ident, parent, sql.Literal(start), sql.Literal(end)
                    )
                )
                return 0
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                ).format(ident, parent)
            )
            conn.execute(
                sql.SQL(
                    "WITH moved AS (DELETE FROM {} WHERE time >= %s AND time < %s RETURNING *) "
                    "INSERT INTO {} SELECT * FROM moved"
                ).format(default, ident),
                (start, end),
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                    parent, ident, sql.Literal(start), sql.Literal(end)
                )
            )
            log.info(
                "partition %s created with %s rows moved from the default partition", name, count
            )
            return count

    def maintain(
        self, conn: Conn, now: datetime, retention: Retention, days_ahead: int
    ) -> MaintenanceReport:
        report = MaintenanceReport()
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (MAINTENANCE_LOCK,)).fetchone()
        if not got or not got[0]:
            log.info("partition maintenance already running elsewhere; skipped")
            return report
        try:
            for series in SERIES_TABLES:
                keep = retention.by_table[series.name]
                cutoff = now - keep
                existing = self._partitions(conn, series.name)
                for name, start in sorted(existing.items(), key=lambda kv: kv[1]):
                    if start + series.interval <= cutoff:
                        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                        report.dropped.append(name)
                have = {start for name, start in existing.items() if name not in report.dropped}
                start = max(
                    _floor(cutoff, series.interval), _floor(now, series.interval) - series.interval
                )
                horizon = now + timedelta(days=days_ahead)
                while start <= horizon:
                    if start not in have:
                        report.moved_rows += self._create(
                            conn, series.name, start, start + series.interval
                        )
                        report.created.append(partition_name(series.name, start))
                    start += series.interval
                expired = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE time < %s").format(
                        sql.Identifier(f"{series.name}_default")
                    ),
                    (cutoff,),
                )
                report.expired_default_rows += max(expired.rowcount, 0)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MAINTENANCE_LOCK,))
        if report.changed:
            log.info(
                "time-series maintenance: %d partitions created, %d dropped, %d rows moved, "
                "%d expired rows deleted",
                len(report.created),
                len(report.dropped),
                report.moved_rows,
                report.expired_default_rows,
            )
        return report


class TimescaleBackend:
    """TimescaleDB hypertables; upkeep is done by TimescaleDB's own policies."""

    name = "timescale"

    def apply_policies(self, conn: Conn, retention: Retention) -> bool:
        changed = False
        for series in SERIES_TABLES:
            want = retention.by_table[series.name]
            row = conn.execute(
                """
                SELECT (config ->> 'drop_after')::interval FROM timescaledb_information.jobs
                WHERE proc_name = 'policy_retention' AND hypertable_name = %s
                """,
                (series.name,),
            ).fetchone()
            if row is not None and row[0] == want:
                continue
            conn.execute("SELECT remove_retention_policy(%s, if_exists => TRUE)", (series.name,))
            conn.execute("SELECT add_retention_policy(%s, drop_after => %s)", (series.name, want))
            changed = True
        return changed

    def maintain(
        self, conn: Conn, now: datetime, retention: Retention, days_ahead: int
    ) -> MaintenanceReport:
        return MaintenanceReport()  # chunks, compression and retention are TimescaleDB jobs


def backend_for(name: str) -> TimeSeriesBackend:
    if name == "timescale":
        return TimescaleBackend()
    if name == "plain":
        return PlainBackend()
    raise ValueError(f"unknown time-series backend {name!r}")
