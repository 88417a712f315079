"""Monitoring coverage within a caller's scope (API).

The computation is the alerts domain's
:func:`~carecircle.platform.alerts.coverage_store.monitoring_report`; only the residents
the caller may see are reported (their housemates still count, as the rules count them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import sql

from carecircle.platform.alerts.coverage_store import MonitoringReport, monitoring_report
from carecircle.platform.api.repo import Conn
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, Principal


def scoped(
    conn: Conn, p: Principal, now: datetime, *, site_id: str | None = None
) -> MonitoringReport:
    conds: list[sql.Composable] = [scope.residents(p, "r")]
    if site_id is not None:
        conds.append(sql.SQL("r.site_id = {}").format(sql.Literal(site_id)))
    rows = conn.execute(
        sql.SQL("SELECT r.id FROM residents r WHERE {}").format(sql.SQL(" AND ").join(conds))
    ).fetchall()
    ids = [str(r[0]) for r in rows]
    return monitoring_report(
        conn, now, site_ids=[site_id] if site_id is not None else None, resident_ids=ids
    )


def one(conn: Conn, resident_id: str, now: datetime) -> dict[str, Any] | None:
    """One resident's report (access already checked by the caller)."""
    report = monitoring_report(conn, now, resident_ids=[resident_id])
    return report.residents[0].as_dict() if report.residents else None


def redact(resident: dict[str, Any], p: Principal) -> dict[str, Any]:
    """Device ids only for callers who may read devices (family members may not)."""
    if p.allowed(Action.DEVICE_READ):
        return resident
    return {
        **resident,
        "detections": [{**d, "devices": [], "offline": []} for d in resident["detections"]],
    }
