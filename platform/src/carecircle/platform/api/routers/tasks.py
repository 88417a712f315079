"""Dispatch tasks: a responder's own offers and tasks ("I go", on the way, on scene,
resolved, handed over), their availability, and the tasks of an alert for staff.

The work is done by :class:`~carecircle.platform.dispatch.service.DispatchService`
(one per app, built at start-up); a task of another responder answers 404 like a
missing one, a task already taken or in the wrong state 409.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from carecircle.common.errors import PermissionDenied
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.models import (
    AvailabilityIn,
    AvailabilityOut,
    NoteIn,
    TaskOut,
    TaskResolveIn,
)
from carecircle.platform.api.repo import tasks as tasks_repo
from carecircle.platform.api.routers.alerts import AlertId
from carecircle.platform.auth import scope
from carecircle.platform.auth.policy import Action, Principal, require, require_role
from carecircle.platform.dispatch.models import Availability, TaskOutcome

router = APIRouter(tags=["tasks"])

TaskId = Annotated[int, Path(ge=1, le=2**62)]


def _responder(p: Principal) -> str:
    """The caller's responder id; only responders have tasks of their own."""
    require_role(p, Action.TASK_ACT)
    if p.responder_id is None:
        raise PermissionDenied("not allowed: task.act needs a responder account")
    return p.responder_id


@router.get("/tasks", response_model=list[TaskOut])
def my_tasks(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    active: Annotated[bool, Query(description="only offered or held tasks")] = False,
) -> list[TaskOut]:
    """The caller's tasks (responders), newest first."""
    rid = _responder(p)
    rows = st.dispatch.tasks_of(conn, rid, active_only=active)
    return [TaskOut.model_validate(r) for r in rows]


@router.post("/tasks/{task_id}/accept", response_model=TaskOut)
def accept(task_id: TaskId, p: PrincipalDep, st: StateDep, conn: ConnDep) -> TaskOut:
    """ "I go": the first responder to accept holds the alert; later ones get 409."""
    row = st.dispatch.accept(conn, task_id, _responder(p), st.clock.now())
    return TaskOut.model_validate(row)


@router.post("/tasks/{task_id}/decline", response_model=TaskOut)
def decline(task_id: TaskId, body: NoteIn, p: PrincipalDep, st: StateDep, conn: ConnDep) -> TaskOut:
    """Refuse an offer; dispatch offers the alert to the next responder."""
    row = st.dispatch.decline(conn, task_id, _responder(p), st.clock.now(), note=body.note)
    return TaskOut.model_validate(row)


@router.post("/tasks/{task_id}/en-route", response_model=TaskOut)
def en_route(task_id: TaskId, p: PrincipalDep, st: StateDep, conn: ConnDep) -> TaskOut:
    """On the way to the resident."""
    row = st.dispatch.en_route(conn, task_id, _responder(p), st.clock.now())
    return TaskOut.model_validate(row)


@router.post("/tasks/{task_id}/on-scene", response_model=TaskOut)
def on_scene(task_id: TaskId, p: PrincipalDep, st: StateDep, conn: ConnDep) -> TaskOut:
    """Arrived; the alert becomes on scene."""
    row = st.dispatch.on_scene(conn, task_id, _responder(p), st.clock.now())
    return TaskOut.model_validate(row)


@router.post("/tasks/{task_id}/resolve", response_model=TaskOut)
def resolve(
    task_id: TaskId, body: TaskResolveIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> TaskOut:
    """Close the task and the alert with what was found; a volunteer's minutes go to
    the time bank."""
    row = st.dispatch.resolve(
        conn, task_id, _responder(p), TaskOutcome(body.outcome), st.clock.now(), note=body.note
    )
    return TaskOut.model_validate(row)


@router.post("/tasks/{task_id}/hand-over", response_model=TaskOut)
def hand_over(
    task_id: TaskId, body: NoteIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> TaskOut:
    """Hand the case over on scene (doctor, ambulance, care worker); staff resolve it."""
    row = st.dispatch.hand_over(conn, task_id, _responder(p), st.clock.now(), note=body.note)
    return TaskOut.model_validate(row)


@router.put("/me/availability", response_model=AvailabilityOut)
def set_availability(
    body: AvailabilityIn, p: PrincipalDep, st: StateDep, conn: ConnDep
) -> AvailabilityOut:
    """A responder goes on or off duty, or marks themselves busy."""
    rid = _responder(p)
    st.dispatch.set_availability(conn, rid, Availability(body.availability))
    return AvailabilityOut.model_validate(
        {"responder_id": rid, "availability": tasks_repo.availability(conn, rid)}
    )


@router.get("/alerts/{alert_id}/tasks", response_model=list[TaskOut])
def alert_tasks(alert_id: AlertId, p: PrincipalDep, conn: ConnDep) -> list[TaskOut]:
    """Every task dispatch made for an alert in the caller's scope (admin, staff)."""
    require_role(p, Action.TASK_READ)
    require(p, Action.TASK_READ, scope.load(conn, "alert", alert_id), "alert")
    return [TaskOut.model_validate(r) for r in tasks_repo.of_alert(conn, alert_id)]
