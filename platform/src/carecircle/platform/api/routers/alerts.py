"""Alerts: list and filter, the timeline, and what staff do with an alert."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from carecircle.platform.alerts import repository
from carecircle.platform.alerts.lifecycle import Outcome, Status
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import (
    AlertDetail,
    AlertOut,
    CommentIn,
    CommentOut,
    DispatchIn,
    NoteIn,
    ResolveIn,
    SnoozeIn,
)
from carecircle.platform.api.paging import CursorQ, LimitQ, Page
from carecircle.platform.api.params import IdQ, KindQ, utc
from carecircle.platform.api.repo import alerts as alerts_repo
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, Principal, require, require_role

router = APIRouter(tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**62)]
StatusName = Literal["open", "acknowledged", "dispatched", "on_scene", "resolved", "cancelled"]
SeverityName = Literal["low", "medium", "high", "critical"]


@router.get("/alerts", response_model=Page[AlertOut])
def list_alerts(
    p: PrincipalDep,
    conn: ConnDep,
    status: Annotated[list[StatusName] | None, Query()] = None,
    kind: Annotated[list[KindQ] | None, Query()] = None,
    severity: Annotated[list[SeverityName] | None, Query()] = None,
    site_id: IdQ = None,
    resident_id: IdQ = None,
    since: Annotated[datetime | None, Query(description="opened at or after")] = None,
    until: Annotated[datetime | None, Query(description="opened before")] = None,
    active: Annotated[bool | None, Query(description="only active (or only closed)")] = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[AlertOut]:
    """Alerts in the caller's scope, newest first."""
    require_role(p, Action.ALERT_READ)
    f = alerts_repo.AlertFilter(
        status=list(status) if status else None,
        kind=list(kind) if kind else None,
        severity=list(severity) if severity else None,
        site_id=site_id,
        resident_id=resident_id,
        since=utc(since),
        until=utc(until),
        active=active,
    )
    rows, nxt = alerts_repo.list_alerts(conn, p, f, limit=limit, cursor=cursor)
    return Page[AlertOut](items=[AlertOut.model_validate(r) for r in rows], next=nxt)


def _access(conn: ConnDep, p: Principal, alert_id: int, action: Action) -> None:
    require_role(p, action)
    require(p, action, scope.load(conn, "alert", alert_id), "alert")


def _detail(conn: ConnDep, alert_id: int) -> AlertDetail:
    return AlertDetail.model_validate(alerts_repo.detail(conn, alert_id))


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: AlertId, p: PrincipalDep, conn: ConnDep) -> AlertDetail:
    """One alert with its timeline (transitions, comments, assignments)."""
    _access(conn, p, alert_id, Action.ALERT_READ)
    return _detail(conn, alert_id)


def _move(
    conn: ConnDep,
    st: StateDep,
    p: Principal,
    alert_id: int,
    target: Status,
    note: str,
    outcome: Outcome | None = None,
) -> AlertDetail:
    _access(conn, p, alert_id, Action.ALERT_ACT)
    repository.transition(
        conn, alert_id, target, actor=p.actor, at=st.clock.now(), note=note, outcome=outcome
    )
    return _detail(conn, alert_id)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertDetail)
def acknowledge(
    alert_id: AlertId, body: NoteIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AlertDetail:
    """Staff have seen the alert and are handling it."""
    return _move(conn, st, p, alert_id, Status.ACKNOWLEDGED, body.note)


@router.post("/alerts/{alert_id}/dispatch", response_model=AlertDetail)
def dispatch(
    alert_id: AlertId, body: DispatchIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AlertDetail:
    """Mark the alert dispatched, optionally naming the responder sent."""
    _access(conn, p, alert_id, Action.ALERT_ACT)
    now = st.clock.now()
    with conn.transaction():
        if body.responder_id is not None:
            require(
                p,
                Action.RESPONDER_READ,
                scope.load(conn, "responder", body.responder_id),
                "responder",
            )
            repository.assign(conn, alert_id, body.responder_id, actor=p.actor, at=now)
        current = Status(repository.get(conn, alert_id)["status"])
        if current is not Status.DISPATCHED or body.responder_id is None:
            repository.transition(
                conn, alert_id, Status.DISPATCHED, actor=p.actor, at=now, note=body.note
            )
    return _detail(conn, alert_id)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertDetail)
def resolve(
    alert_id: AlertId, body: ResolveIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AlertDetail:
    """Close the alert with its outcome (real incident, false alarm, resident fine)."""
    return _move(conn, st, p, alert_id, Status.RESOLVED, body.note, Outcome(body.outcome))


@router.post("/alerts/{alert_id}/cancel", response_model=AlertDetail)
def cancel(
    alert_id: AlertId, body: NoteIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AlertDetail:
    """Withdraw an alert raised in error."""
    return _move(conn, st, p, alert_id, Status.CANCELLED, body.note)


@router.post("/alerts/{alert_id}/snooze", response_model=AlertDetail)
def snooze(
    alert_id: AlertId, body: SnoozeIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AlertDetail:
    """Quieten an active alert for some minutes (e.g. an oscillating leak sensor)."""
    _access(conn, p, alert_id, Action.ALERT_ACT)
    now = st.clock.now()
    repository.snooze(
        conn,
        alert_id,
        now + timedelta(minutes=body.minutes),
        actor=p.actor,
        at=now,
        note=body.note,
    )
    return _detail(conn, alert_id)


@router.post("/alerts/{alert_id}/comments", response_model=CommentOut, status_code=201)
def comment(
    alert_id: AlertId, body: CommentIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> CommentOut:
    """Add a note to the alert's timeline."""
    _access(conn, p, alert_id, Action.ALERT_COMMENT)
    cid = repository.comment(conn, alert_id, body.body, actor=p.actor, at=st.clock.now())
    return CommentOut(id=cid, alert_id=alert_id)
