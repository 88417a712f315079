"""SQL of the API's read side, one module per domain; writes to alerts go through
:mod:`carecircle.platform.alerts.repository`."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from carecircle.platform.api.paging import decode_cursor, page_of

Conn = psycopg.Connection[Any]


def fetch_page(
    conn: Conn,
    select: str,
    where: list[sql.Composable],
    *,
    limit: int,
    cursor: str | None,
    id_col: str,
) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of ``select`` matching every condition, ordered by ``id_col``, one page."""
    key = decode_cursor(cursor, 1)
    conds = list(where)
    if key is not None:
        conds.append(sql.SQL("{} > {}").format(sql.SQL(id_col), sql.Literal(str(key[0]))))
    query = sql.SQL("{} WHERE {} ORDER BY {} LIMIT {}").format(
        sql.SQL(select),
        sql.SQL(" AND ").join(conds) if conds else sql.SQL("TRUE"),
        sql.SQL(id_col),
        sql.Literal(limit + 1),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query).fetchall()
    return page_of(rows, limit, ["id"])


def eq(col: str, value: Any) -> sql.Composable:
    return sql.SQL("{} = {}").format(sql.SQL(col), sql.Literal(value))


def audit(
    conn: Conn, actor: str, action: str, object_type: str, object_id: str, detail: dict[str, Any]
) -> None:
    """Record a sensitive read (vitals, location, FHIR export) in the audit log."""
    from psycopg.types.json import Jsonb

    conn.execute(
        "INSERT INTO audit_log (actor, action, object_type, object_id, detail) "
        "VALUES (%s, %s, %s, %s, %s)",
        (actor, action, object_type, object_id, Jsonb(detail)),
    )
