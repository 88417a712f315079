"""Residents: who they are, where they live (if allowed), readings, rollups, status
now and the daily wellbeing summary; family members' own list of residents."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from psycopg.rows import dict_row

from carecircle.common.contract import Code, spec
from carecircle.common.errors import PermissionDenied
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.errors import InvalidInput
from carecircle.platform.api.models import (
    FamilyResidentOut,
    HomeOut,
    ReadingOut,
    ResidentDetail,
    ResidentOut,
    RollupOut,
    StatusOut,
    SummaryOut,
)
from carecircle.platform.api.paging import CursorQ, LimitQ, Page
from carecircle.platform.api.params import IdPath, IdQ, utc
from carecircle.platform.api.repo import audit, directory, vitals
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import (
    Action,
    Principal,
    Resource,
    Role,
    can,
    require,
    require_role,
)

router = APIRouter(tags=["residents"])

CodesQ = Annotated[list[Code] | None, Query(description="measurement codes (repeatable)")]
MAX_SPAN = timedelta(days=31)


def window(
    since: datetime | None, until: datetime | None, now: datetime, default: timedelta
) -> tuple[datetime, datetime]:
    """A [since, until) window, defaulting to the last ``default``; at most 31 days."""
    until = utc(until) or now
    since = utc(since) or until - default
    if since >= until:
        raise InvalidInput("since must be before until")
    if until - since > MAX_SPAN:
        raise InvalidInput("ask for at most 31 days at a time")
    return since, until


def resident_access(conn: ConnDep, p: Principal, resident_id: str, action: Action) -> Resource:
    require_role(p, Action.RESIDENT_READ)
    return require(p, action, scope.load(conn, "resident", resident_id), "resident")


@router.get("/residents", response_model=Page[ResidentOut])
def list_residents(
    p: PrincipalDep,
    conn: ConnDep,
    site_id: IdQ = None,
    limit: LimitQ = 100,
    cursor: CursorQ = None,
) -> Page[ResidentOut]:
    require_role(p, Action.RESIDENT_READ)
    rows, nxt = directory.list_residents(conn, p, site_id=site_id, limit=limit, cursor=cursor)
    return Page[ResidentOut](items=[ResidentOut.model_validate(r) for r in rows], next=nxt)


@router.get("/residents/{resident_id}", response_model=ResidentDetail)
def get_resident(
    resident_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> ResidentDetail:
    """A resident; ``home`` (address, coordinates) only for callers allowed to see it."""
    res = resident_access(conn, p, resident_id, Action.RESIDENT_READ)
    row = directory.one(conn, directory.RESIDENT_SELECT, "r.id", resident_id)
    home = None
    if can(p, Action.RESIDENT_LOCATION, res):
        home = HomeOut.model_validate(directory.resident_home(conn, resident_id, st.pii))
        audit(conn, p.actor, "resident.read_location", "resident", resident_id, {})
    return ResidentDetail.model_validate({**row, "home": home})


@router.get("/residents/{resident_id}/readings", response_model=Page[ReadingOut])
def get_readings(
    resident_id: IdPath,
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    code: CodesQ = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: LimitQ = 200,
    cursor: CursorQ = None,
) -> Page[ReadingOut]:
    """Raw readings of the resident's devices, newest first (default: the last 24 h)."""
    resident_access(conn, p, resident_id, Action.RESIDENT_VITALS)
    since, until = window(since, until, st.clock.now(), timedelta(days=1))
    codes = [c.value for c in code] if code else None
    rows, nxt = vitals.readings(
        conn, resident_id, codes=codes, since=since, until=until, limit=limit, cursor=cursor
    )
    audit(
        conn,
        p.actor,
        "resident.read_vitals",
        "resident",
        resident_id,
        {"since": since.isoformat(), "until": until.isoformat(), "codes": codes},
    )
    return Page[ReadingOut](
        items=[ReadingOut.model_validate({**r, "unit": _unit(r["code"])}) for r in rows],
        next=nxt,
    )


def _unit(code: str) -> str:
    try:
        return spec(Code(code)).unit
    except ValueError:
        return "1"


@router.get("/residents/{resident_id}/rollups", response_model=list[RollupOut])
def get_rollups(
    resident_id: IdPath,
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    code: CodesQ = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[RollupOut]:
    """Hourly count/mean/min/max per code (default: the last 7 days)."""
    resident_access(conn, p, resident_id, Action.RESIDENT_VITALS)
    since, until = window(since, until, st.clock.now(), timedelta(days=7))
    codes = [c.value for c in code] if code else None
    rows = vitals.hourly(conn, resident_id, codes=codes, since=since, until=until)
    audit(
        conn,
        p.actor,
        "resident.read_vitals",
        "resident",
        resident_id,
        {"since": since.isoformat(), "until": until.isoformat(), "codes": codes, "rollup": "1h"},
    )
    return [RollupOut.model_validate({**r, "unit": _unit(r["code"])}) for r in rows]


@router.get("/residents/{resident_id}/status", response_model=StatusOut)
def get_status(resident_id: IdPath, p: PrincipalDep, st: StateDep, conn: ConnDep) -> StatusOut:
    """How the resident is now: presence, last activity, active alerts, devices."""
    resident_access(conn, p, resident_id, Action.RESIDENT_SUMMARY)
    return StatusOut.model_validate(vitals.status_now(conn, resident_id, st.clock.now()))


@router.get("/residents/{resident_id}/summary", response_model=SummaryOut)
def get_summary(
    resident_id: IdPath,
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    day: Annotated[date | None, Query(description="local day (default today)")] = None,
) -> SummaryOut:
    """The daily wellbeing summary: activity, alerts, and vitals if the caller may see them."""
    res = resident_access(conn, p, resident_id, Action.RESIDENT_SUMMARY)
    tz = ZoneInfo(st.settings.timezone)
    day = day or st.clock.now().astimezone(tz).date()
    if not date(2000, 1, 1) <= day <= date(2100, 1, 1):
        raise InvalidInput("day is out of range")
    start = datetime.combine(day, time(0), tz)
    with_vitals = can(p, Action.RESIDENT_VITALS, res)
    data: dict[str, Any] = vitals.daily_summary(
        conn, resident_id, start, include_vitals=with_vitals
    )
    if with_vitals:
        audit(conn, p.actor, "resident.read_vitals", "resident", resident_id, {"day": str(day)})
    return SummaryOut.model_validate({**data, "day": day.isoformat()})


@router.get("/family/residents", response_model=list[FamilyResidentOut], tags=["family"])
def family_residents(p: PrincipalDep, conn: ConnDep) -> list[FamilyResidentOut]:
    """The residents linked to the signed-in family member, with what each link allows."""
    if p.role is not Role.FAMILY:
        raise PermissionDenied("only family members have linked residents")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            directory.RESIDENT_SELECT.replace(
                "FROM residents r",
                ", fl.relationship, fl.consent FROM residents r "
                "JOIN family_links fl ON fl.resident_id = r.id",
            )
            + " WHERE fl.family_member_id = %s ORDER BY r.id",
            (p.family_member_id,),
        ).fetchall()
    return [FamilyResidentOut.model_validate(r) for r in rows]
