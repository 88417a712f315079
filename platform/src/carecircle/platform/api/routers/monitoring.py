"""Monitoring coverage: per resident, which detections the installed devices can
support, and the gaps to fix (docs/alerts.md, "Monitoring coverage").

The whole report is for admins and staff within their scope (as ``GET /coverage``);
one resident's report is also for a family member whose link allows the daily
summary (as ``GET /residents/{id}/status``), without device ids.
"""

from __future__ import annotations

from fastapi import APIRouter

from carecircle.common.errors import NotFound
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import MonitoringOut, ResidentMonitoringOut
from carecircle.platform.api.params import IdPath, IdQ
from carecircle.platform.api.repo import monitoring
from carecircle.platform.api.routers.residents import resident_access
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, require, require_role

router = APIRouter(tags=["coverage"])


@router.get("/monitoring-coverage", response_model=MonitoringOut)
def monitoring_coverage(
    p: PrincipalDep, st: StateDep, conn: ConnDep, site_id: IdQ = None
) -> MonitoringOut:
    """For every resident in scope (or of one site), each detection kind: ``watched``,
    ``partial``, ``not_watched`` or ``off``, why, and what would fix it; per site and
    township how many residents each kind leaves unwatched."""
    require_role(p, Action.COVERAGE_READ)
    if site_id is not None:
        require(p, Action.SITE_READ, scope.load(conn, "site", site_id), "site")
    report = monitoring.scoped(conn, p, st.clock.now(), site_id=site_id)
    body = report.as_dict()
    body["residents"] = [monitoring.redact(r, p) for r in body["residents"]]
    return MonitoringOut.model_validate(body)


@router.get("/residents/{resident_id}/monitoring-coverage", response_model=ResidentMonitoringOut)
def resident_monitoring_coverage(
    resident_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> ResidentMonitoringOut:
    """One resident's detections: what her devices can watch, and the gaps."""
    resident_access(conn, p, resident_id, Action.RESIDENT_SUMMARY)
    found = monitoring.one(conn, resident_id, st.clock.now())
    if found is None:
        raise NotFound("resident not found")
    return ResidentMonitoringOut.model_validate(monitoring.redact(found, p))
