"""Coverage of the 15-minute circle for admins and staff, within their scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import CoverageOut
from carecircle.platform.api.repo import coverage as coverage_repo
from carecircle.platform.auth.policy import Action, require_role

router = APIRouter(tags=["coverage"])


@router.get("/coverage", response_model=CoverageOut)
def coverage(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    by_hour: Annotated[bool, Query(description="also the fastest arrival by hour of day")] = False,
) -> CoverageOut:
    """For every resident in scope the fastest arrival of an available responder now
    (and by local hour), per township and village the share covered within the circle
    (15 min), and the sites nobody can reach in time."""
    require_role(p, Action.COVERAGE_READ)
    sc = coverage_repo.scoped(conn, p, st.dispatch, st.clock.now(), by_hour=by_hour)
    body: dict[str, Any] = sc.report.as_dict()
    for r in body["residents"]:
        if r["responder_id"] not in sc.visible_responders:
            r["responder_id"] = None
        r["by_hour"] = list(r["by_hour"])
    for place in body["places"]:
        place["share_by_hour"] = list(place["share_by_hour"])
    return CoverageOut.model_validate(body)
