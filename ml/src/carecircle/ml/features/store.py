"""The thin SQL side of feature extraction: rollups, rooms and residents from the store.

Reads the pinned ``rollup_1h`` table (``bucket, resident_id, site_id, device_id, code,
n, sum, min, max``) — never raw readings — and ``devices.room_id`` → ``rooms.kind``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg

from carecircle.common.errors import StoreError
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
    rows = conn.execute(
        "SELECT DISTINCT resident_id FROM rollup_1h "
        "WHERE bucket >= %s AND bucket < %s AND resident_id IS NOT NULL ORDER BY 1",
        (since, until),
    ).fetchall()
    return [str(r[0]) for r in rows]


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for k in range(0, len(items), size):
        yield list(items[k : k + size])
