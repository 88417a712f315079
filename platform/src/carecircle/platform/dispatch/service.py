"""Dispatch on the database: take alerts on, apply the policy's actions, and the
responder's side of a task (accept, decline, en route, on scene, resolve, hand over).

Every change to one alert's dispatch runs in one transaction holding its
``dispatches`` row ``FOR UPDATE``, so the dispatcher and API requests never race;
"I go" is additionally guarded by a unique partial index (one holder per alert).
Alert status changes go through :mod:`carecircle.platform.alerts.repository`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from carecircle.common.errors import CareCircleError, Conflict, NotFound
from carecircle.platform.alerts import repository as alerts_repo
from carecircle.platform.alerts.lifecycle import Status
from carecircle.platform.dispatch import registry, timebank
from carecircle.platform.dispatch.models import (
    HOLDING,
    AlertInfo,
    Availability,
    DispatchState,
    Responder,
    TaskOutcome,
    TaskStatus,
    TaskView,
    is_available,
)
from carecircle.platform.dispatch.notify.outbox import enqueue
from carecircle.platform.dispatch.policy import (
    Accepted,
    Action,
    AlertClosed,
    CancelHolder,
    Close,
    Declined,
    DispatchPolicy,
    Escalate,
    Event,
    Expire,
    Offer,
    Opened,
    Release,
    Tick,
    decide,
    escalation_targets,
    rank_candidates,
)
from carecircle.platform.dispatch.travel import GreatCircleEstimator, TravelTimeEstimator
from carecircle.platform.privacy.contacts import family_target, responder_target

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]

#: Which task states may follow which.
TASK_STEPS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OFFERED: frozenset(
        {
            TaskStatus.ACCEPTED,
            TaskStatus.DECLINED,
            TaskStatus.EXPIRED,
            TaskStatus.RELEASED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.ACCEPTED: frozenset(
        {TaskStatus.EN_ROUTE, TaskStatus.ON_SCENE, TaskStatus.RESOLVED, TaskStatus.CANCELLED}
    ),
    TaskStatus.EN_ROUTE: frozenset(
        {TaskStatus.ON_SCENE, TaskStatus.RESOLVED, TaskStatus.CANCELLED}
    ),
    TaskStatus.ON_SCENE: frozenset(
        {TaskStatus.RESOLVED, TaskStatus.HANDED_OVER, TaskStatus.CANCELLED}
    ),
}
_TS_COLUMN: dict[TaskStatus, str] = {
    s: f"{s.value}_at" for s in TaskStatus if s is not TaskStatus.OFFERED
}
ACTIVE_ALERT = ("open", "acknowledged", "dispatched", "on_scene")
#: ``NOTIFY`` channel of task offers and of offers withdrawn (expired, released,
#: cancelled), for live streams: JSON ``{"id", "task_id", "responder_id", "alert_id",
#: "status", "via", "kind", "severity"}``; sent when the transaction commits.
TASK_CHANNEL = "cc_task"


def notify_task(
    conn: Conn, task_id: int, responder_id: str, alert: AlertInfo, status: TaskStatus, via: str
) -> None:
    payload = {
        "id": task_id,
        "task_id": task_id,
        "responder_id": responder_id,
        "alert_id": alert.id,
        "status": status.value,
        "via": via,
        "kind": alert.kind,
        "severity": alert.severity,
    }
    conn.execute("SELECT pg_notify(%s, %s)", (TASK_CHANNEL, json.dumps(payload)))


@dataclass(frozen=True)
class Channels:
    """Where notifications go besides the responder app (MQTT, always on)."""

    sms: bool = False
    webhook_url: str | None = None
    email_to: tuple[str, ...] = ()
    #: ``webhook`` sends emergency escalations to ``webhook_url`` (a call-centre
    #: integration), ``sms`` to the emergency number through the SMS gateway.
    emergency_via: str = "webhook"


@dataclass
class DispatchService:
    policy: DispatchPolicy = field(default_factory=DispatchPolicy)
    estimator: TravelTimeEstimator = field(default_factory=GreatCircleEstimator)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    channels: Channels = field(default_factory=Channels)
    #: Window for volunteers' recent task counts (fairness).
    fairness_window: timedelta = timedelta(days=7)

    # --- the dispatcher's side ------------------------------------------------------

    def open(self, conn: Conn, alert_id: int, now: datetime) -> list[Action]:
        """Take an alert on (idempotent): rank, offer, maybe escalate."""
        with conn.transaction():
            try:
                alert, status = registry.alert_info(conn, alert_id)
            except NotFound:
                log.warning("alert %s vanished before dispatch", alert_id)
                return []
            if status not in ACTIVE_ALERT or not self.policy.dispatches(
                alert.kind, alert.severity, alert.site_id
            ):
                return []
            row = conn.execute(
                "INSERT INTO dispatches (alert_id, kind, site_id, critical, opened_at, "
                "started_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
                "RETURNING alert_id",
                (
                    alert_id,
                    alert.kind,
                    alert.site_id,
                    self.policy.rule(alert.kind, alert.site_id).critical,
                    alert.opened_at,
                    now,
                ),
            ).fetchone()
            if row is None:
                return []
            log.info("dispatching alert %s (%s at site %s)", alert_id, alert.kind, alert.site_id)
            return self._step(conn, alert_id, Opened(), now)

    def close(self, conn: Conn, alert_id: int, now: datetime) -> list[Action]:
        """The alert was resolved or cancelled elsewhere: release everyone."""
        with conn.transaction():
            return self._step(conn, alert_id, AlertClosed(), now)

    def due(self, conn: Conn, now: datetime) -> list[int]:
        """Alerts whose dispatch has something to do at ``now`` (timeouts survive restarts:
        deadlines live in the database)."""
        rows = conn.execute(
            """
            SELECT d.alert_id FROM dispatches d JOIN alerts a ON a.id = d.alert_id
            WHERE d.state <> 'closed' AND (
                a.status IN ('resolved', 'cancelled')
                OR (d.state = 'searching' AND (
                    EXISTS (SELECT 1 FROM tasks t WHERE t.alert_id = d.alert_id
                            AND t.status = 'offered' AND t.deadline <= %(now)s)
                    OR (d.escalated_at IS NULL
                        AND d.opened_at + make_interval(secs => %(after)s) <= %(now)s)))
                OR (d.state = 'assigned' AND d.escalated_at IS NULL
                    AND d.opened_at + make_interval(secs => %(circle)s) <= %(now)s
                    AND EXISTS (SELECT 1 FROM tasks t WHERE t.alert_id = d.alert_id
                                AND t.status IN ('accepted', 'en_route'))))
            ORDER BY d.alert_id
            """,
            {
                "now": now,
                "after": self.policy.escalate_after_s,
                "circle": self.policy.circle_s,
            },
        ).fetchall()
        return [int(r[0]) for r in rows]

    def tick(self, conn: Conn, now: datetime) -> int:
        """Run timeouts for every due dispatch; returns how many were stepped."""
        n = 0
        for alert_id in self.due(conn, now):
            try:
                with conn.transaction():
                    _, status = registry.alert_info(conn, alert_id)
                    event: Event = AlertClosed() if status not in ACTIVE_ALERT else Tick()
                    self._step(conn, alert_id, event, now)
            except psycopg.OperationalError:
                raise
            except (CareCircleError, psycopg.Error):
                log.exception("dispatch timeouts of alert %s failed", alert_id)
                continue
            n += 1
        return n

    def undispatched(self, conn: Conn, since: datetime) -> list[int]:
        """Active alerts opened since ``since`` that dispatch has not taken on (start-up)."""
        rows = conn.execute(
            "SELECT a.id FROM alerts a WHERE a.status IN ('open', 'acknowledged') "
            "AND a.opened_at >= %s AND NOT EXISTS "
            "(SELECT 1 FROM dispatches d WHERE d.alert_id = a.id) ORDER BY a.id",
            (since,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    # --- the responder's side -------------------------------------------------------

    def accept(self, conn: Conn, task_id: int, responder_id: str, now: datetime) -> dict[str, Any]:
        """ "I go": the first acceptor gets the alert; anyone later gets :class:`Conflict`."""
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            status = TaskStatus(task["status"])
            if status in HOLDING:
                return self._task(conn, task_id)  # a repeated tap changes nothing
            holder = conn.execute(
                "SELECT responder_id FROM tasks WHERE alert_id = %s AND status = ANY(%s)",
                (task["alert_id"], [s.value for s in HOLDING]),
            ).fetchone()
            if holder is not None or status is TaskStatus.RELEASED:
                raise Conflict("already taken: another responder is going")
            if status is not TaskStatus.OFFERED:
                raise Conflict(f"this offer is {status.value} and can no longer be accepted")
            _, alert_status = registry.alert_info(conn, int(task["alert_id"]))
            if alert_status not in ACTIVE_ALERT:
                raise Conflict(f"the alert is already {alert_status}")
            try:
                with conn.transaction():
                    self._set_status(conn, task_id, TaskStatus.ACCEPTED, now)
            except psycopg.errors.UniqueViolation as err:
                raise Conflict("already taken: another responder is going") from err
            if alert_status in ("open", "acknowledged"):
                alerts_repo.transition(
                    conn,
                    int(task["alert_id"]),
                    Status.DISPATCHED,
                    actor=f"responder:{responder_id}",
                    at=now,
                    note=f"task {task_id} accepted",
                )
            conn.execute(
                "UPDATE dispatches SET state = 'assigned' WHERE alert_id = %s",
                (task["alert_id"],),
            )
            self._step(conn, int(task["alert_id"]), Accepted(responder_id), now)
            return self._task(conn, task_id)

    def decline(
        self, conn: Conn, task_id: int, responder_id: str, now: datetime, note: str = ""
    ) -> dict[str, Any]:
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            self._check_step(task, TaskStatus.DECLINED)
            self._set_status(conn, task_id, TaskStatus.DECLINED, now, note=note)
            self._step(conn, int(task["alert_id"]), Declined(responder_id), now)
            return self._task(conn, task_id)

    def en_route(
        self, conn: Conn, task_id: int, responder_id: str, now: datetime
    ) -> dict[str, Any]:
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            self._check_step(task, TaskStatus.EN_ROUTE)
            self._set_status(conn, task_id, TaskStatus.EN_ROUTE, now)
            return self._task(conn, task_id)

    def on_scene(
        self, conn: Conn, task_id: int, responder_id: str, now: datetime
    ) -> dict[str, Any]:
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            self._check_step(task, TaskStatus.ON_SCENE)
            self._set_status(conn, task_id, TaskStatus.ON_SCENE, now)
            alerts_repo.transition(
                conn,
                int(task["alert_id"]),
                Status.ON_SCENE,
                actor=f"responder:{responder_id}",
                at=now,
                note=f"task {task_id} on scene",
            )
            return self._task(conn, task_id)

    def resolve(
        self,
        conn: Conn,
        task_id: int,
        responder_id: str,
        outcome: TaskOutcome,
        now: datetime,
        note: str = "",
    ) -> dict[str, Any]:
        """Close the task and the alert with an outcome; credits a volunteer's time bank."""
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            self._check_step(task, TaskStatus.RESOLVED)
            self._set_status(conn, task_id, TaskStatus.RESOLVED, now, note=note, outcome=outcome)
            alerts_repo.transition(
                conn,
                int(task["alert_id"]),
                Status.RESOLVED,
                actor=f"responder:{responder_id}",
                at=now,
                note=(f"{outcome.value}: {note}" if note else outcome.value)[:500],
                outcome=outcome.alert_outcome,
            )
            timebank.credit_task(conn, task_id, now)
            self._step(conn, int(task["alert_id"]), AlertClosed(), now)
            return self._task(conn, task_id)

    def hand_over(
        self, conn: Conn, task_id: int, responder_id: str, now: datetime, note: str = ""
    ) -> dict[str, Any]:
        """The responder on scene hands the case over (to a doctor, ambulance, care worker);
        the alert stays on scene for staff to resolve; dispatch's part ends."""
        with conn.transaction():
            task = self._lock_task(conn, task_id, responder_id)
            self._check_step(task, TaskStatus.HANDED_OVER)
            self._set_status(conn, task_id, TaskStatus.HANDED_OVER, now, note=note)
            timebank.credit_task(conn, task_id, now)
            self._step(conn, int(task["alert_id"]), AlertClosed(), now)
            return self._task(conn, task_id)

    def tasks_of(
        self, conn: Conn, responder_id: str, *, active_only: bool = False
    ) -> list[dict[str, Any]]:
        """A responder's tasks, newest first (``active_only``: offered or holding)."""
        statuses = [TaskStatus.OFFERED.value, *(s.value for s in HOLDING)]
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "SELECT t.*, a.kind, a.severity, a.site_id, a.resident_id FROM tasks t "
                "JOIN alerts a ON a.id = t.alert_id WHERE t.responder_id = %s "
                "AND (NOT %s OR t.status = ANY(%s)) ORDER BY t.offered_at DESC, t.id DESC",
                (responder_id, active_only, statuses),
            ).fetchall()

    def set_availability(self, conn: Conn, responder_id: str, availability: Availability) -> None:
        cur = conn.execute(
            "UPDATE responders SET availability = %s WHERE id = %s",
            (availability.value, responder_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"responder {responder_id} not found")

    # --- internals --------------------------------------------------------------------

    def _lock_task(self, conn: Conn, task_id: int, responder_id: str) -> dict[str, Any]:
        row = conn.execute(
            "SELECT alert_id FROM tasks WHERE id = %s AND responder_id = %s",
            (task_id, responder_id),
        ).fetchone()
        if row is None:
            raise NotFound(f"task {task_id} not found for responder {responder_id}")
        # serialise everything that touches this alert's dispatch
        conn.execute("SELECT 1 FROM dispatches WHERE alert_id = %s FOR UPDATE", (row[0],))
        with conn.cursor(row_factory=dict_row) as cur:
            task = cur.execute(
                "SELECT * FROM tasks WHERE id = %s FOR UPDATE", (task_id,)
            ).fetchone()
        assert task is not None
        return task

    @staticmethod
    def _check_step(task: dict[str, Any], target: TaskStatus) -> None:
        current = TaskStatus(task["status"])
        if target not in TASK_STEPS.get(current, frozenset()):
            raise Conflict(f"a task that is {current.value} cannot become {target.value}")

    @staticmethod
    def _set_status(
        conn: Conn,
        task_id: int,
        status: TaskStatus,
        now: datetime,
        *,
        note: str = "",
        outcome: TaskOutcome | None = None,
    ) -> None:
        column = _TS_COLUMN[status]
        conn.execute(
            f"UPDATE tasks SET status = %s, {column} = %s, "  # noqa: S608 - fixed column names
            "note = CASE WHEN %s = '' THEN note ELSE %s END, outcome = COALESCE(%s, outcome), "
            "updated_at = now() WHERE id = %s",
            (status.value, now, note, note[:500], outcome.value if outcome else None, task_id),
        )

    @staticmethod
    def _task(conn: Conn, task_id: int) -> dict[str, Any]:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM tasks WHERE id = %s", (task_id,)).fetchone()
        assert row is not None
        return row

    def _state(
        self, conn: Conn, alert_id: int, now: datetime
    ) -> tuple[DispatchState, list[Responder]]:
        row = conn.execute(
            "SELECT escalated_at, state, started_at FROM dispatches WHERE alert_id = %s FOR UPDATE",
            (alert_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"alert {alert_id} is not being dispatched")
        alert, _ = registry.alert_info(conn, alert_id)
        tasks = tuple(
            TaskView(
                responder_id=str(t[0]),
                status=TaskStatus(t[1]),
                via=str(t[2]),
                offered_at=t[3],
                deadline=t[4],
                accepted_at=t[5],
                eta_s=t[6],
            )
            for t in conn.execute(
                "SELECT responder_id, status, via, offered_at, deadline, accepted_at, eta_s "
                "FROM tasks WHERE alert_id = %s ORDER BY id",
                (alert_id,),
            ).fetchall()
        )
        responders = registry.load_responders(conn)
        busy = registry.holders(conn)
        load = registry.recent_load(conn, now - self.fairness_window)

        def available(r: Responder, at: datetime) -> bool:
            return is_available(r, at, self.tz, holding=r.id in busy)

        candidates = rank_candidates(
            alert, responders, available, self.estimator, now, self.policy, load
        )
        state = DispatchState(
            alert=alert,
            tasks=tasks,
            candidates=tuple(candidates),
            escalated=row[0] is not None,
            closed=row[1] == "closed",
            started_at=row[2],
            extra={"busy": busy},
        )
        return state, responders

    def _step(self, conn: Conn, alert_id: int, event: Event, now: datetime) -> list[Action]:
        state, responders = self._state(conn, alert_id, now)
        actions = decide(state, event, now, self.policy)
        for action in actions:
            self._apply(conn, state, responders, action, now)
        return actions

    def _payload(self, kind: str, alert: AlertInfo, now: datetime, **extra: Any) -> dict[str, Any]:
        return {
            "v": 1,
            "type": kind,
            "alert_id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "site_id": alert.site_id,
            "resident_id": alert.resident_id,
            "lat": alert.location.lat,
            "lon": alert.location.lon,
            "opened_at": alert.opened_at.isoformat(),
            "at": now.isoformat(),
            **extra,
        }

    def _tell_responders(
        self,
        conn: Conn,
        alert: AlertInfo,
        ids: Sequence[str],
        status_from: TaskStatus,
        status_to: TaskStatus,
        message: str,
        now: datetime,
        reason: str,
    ) -> None:
        rows = conn.execute(
            f"UPDATE tasks SET status = %s, {_TS_COLUMN[status_to]} = %s, "  # noqa: S608
            "updated_at = now() WHERE alert_id = %s AND responder_id = ANY(%s) "
            "AND status = %s RETURNING id, responder_id, via",
            (status_to.value, now, alert.id, list(ids), status_from.value),
        ).fetchall()
        for task_id, rid, via in rows:
            notify_task(conn, int(task_id), str(rid), alert, status_to, str(via))
            enqueue(
                conn,
                channel="mqtt",
                target=str(rid),
                payload=self._payload(message, alert, now, task_id=int(task_id), reason=reason),
                now=now,
                alert_id=alert.id,
                task_id=int(task_id),
            )

    def _offer(
        self,
        conn: Conn,
        alert: AlertInfo,
        responder: Responder | None,
        responder_id: str,
        now: datetime,
        *,
        via: str,
        eta_s: float | None,
        distance_m: float | None,
        deadline: datetime | None,
        reason: str = "",
    ) -> int | None:
        row = conn.execute(
            "INSERT INTO tasks (alert_id, responder_id, via, eta_s, distance_m, offered_at, "
            "deadline) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (alert_id, responder_id) DO NOTHING RETURNING id",
            (alert.id, responder_id, via, eta_s, distance_m, now, deadline),
        ).fetchone()
        if row is None:
            return None
        task_id = int(row[0])
        notify_task(conn, task_id, responder_id, alert, TaskStatus.OFFERED, via)
        payload = self._payload(
            "offer" if via == "offer" else "escalation",
            alert,
            now,
            task_id=task_id,
            eta_s=eta_s,
            distance_m=distance_m,
            deadline=deadline.isoformat() if deadline else None,
            reason=reason or None,
        )
        enqueue(
            conn,
            channel="mqtt",
            target=responder_id,
            payload=payload,
            now=now,
            alert_id=alert.id,
            task_id=task_id,
        )
        if via == "escalation" and self.channels.sms and responder and responder.has_phone:
            enqueue(
                conn,
                channel="sms",
                target=responder_target(responder.id),
                payload=payload,
                now=now,
                alert_id=alert.id,
                task_id=task_id,
            )
        return task_id

    def _apply(
        self,
        conn: Conn,
        state: DispatchState,
        responders: list[Responder],
        action: Action,
        now: datetime,
    ) -> None:
        alert = state.alert
        by_id = {r.id: r for r in responders}
        if isinstance(action, Offer):
            self._offer(
                conn,
                alert,
                by_id.get(action.responder_id),
                action.responder_id,
                now,
                via="offer",
                eta_s=action.eta_s,
                distance_m=action.distance_m,
                deadline=action.deadline,
            )
        elif isinstance(action, Expire):
            self._tell_responders(
                conn,
                alert,
                action.responder_ids,
                TaskStatus.OFFERED,
                TaskStatus.EXPIRED,
                "expired",
                now,
                "no answer in time",
            )
        elif isinstance(action, Release):
            self._tell_responders(
                conn,
                alert,
                action.responder_ids,
                TaskStatus.OFFERED,
                TaskStatus.RELEASED,
                "taken" if action.reason == "taken" else "released",
                now,
                action.reason,
            )
        elif isinstance(action, CancelHolder):
            for status in HOLDING:
                self._tell_responders(
                    conn,
                    alert,
                    [action.responder_id],
                    status,
                    TaskStatus.CANCELLED,
                    "cancelled",
                    now,
                    "the alert was closed",
                )
        elif isinstance(action, Escalate):
            self._escalate(conn, state, responders, action, now)
        elif isinstance(action, Close):
            conn.execute(
                "UPDATE dispatches SET state = 'closed', closed_at = %s WHERE alert_id = %s",
                (now, alert.id),
            )

    def _escalate(
        self,
        conn: Conn,
        state: DispatchState,
        responders: list[Responder],
        action: Escalate,
        now: datetime,
    ) -> None:
        alert = state.alert
        busy = state.extra.get("busy", set())
        log.warning("escalating alert %s (%s): %s", alert.id, alert.kind, action.reason)
        conn.execute("UPDATE dispatches SET escalated_at = %s WHERE alert_id = %s", (now, alert.id))
        by_id = {r.id: r for r in responders}

        def available(r: Responder, at: datetime) -> bool:
            return is_available(r, at, self.tz, holding=r.id in busy)

        professional = [k for k in action.target_kinds if k not in ("family", "emergency")]
        for kind, rid in escalation_targets(alert, responders, available, now, professional):
            self._record_escalation(conn, alert.id, kind, rid, now, action.reason)
            responder = by_id[rid]
            eta = self.estimator.eta_s(responder.location, alert.location, responder.travel_mode)
            if state.holder is not None:
                # someone already holds the alert: tell, do not offer
                note = self._payload("escalation", alert, now, reason=action.reason, eta_s=eta)
                enqueue(conn, channel="mqtt", target=rid, payload=note, now=now, alert_id=alert.id)
                if self.channels.sms and responder.has_phone:
                    enqueue(
                        conn,
                        channel="sms",
                        target=responder_target(responder.id),
                        payload=note,
                        now=now,
                        alert_id=alert.id,
                    )
                continue
            self._offer(
                conn,
                alert,
                responder,
                rid,
                now,
                via="escalation",
                eta_s=eta,
                distance_m=self.estimator.distance_m(responder.location, alert.location),
                deadline=None,
                reason=action.reason,
            )
        payload = self._payload("escalation", alert, now, reason=action.reason)
        if "family" in action.target_kinds:
            for member_id, has_phone in registry.family_contacts(conn, alert.resident_id):
                self._record_escalation(conn, alert.id, "family", member_id, now, action.reason)
                if has_phone and self.channels.sms:
                    enqueue(
                        conn,
                        channel="sms",
                        target=family_target(member_id),
                        payload=payload,
                        now=now,
                        alert_id=alert.id,
                    )
        number = self.policy.emergency_number
        if "emergency" in action.target_kinds and number:
            self._record_escalation(conn, alert.id, "emergency", number, now, action.reason)
            emergency = {**payload, "emergency_number": number}
            if self.channels.emergency_via == "sms" and self.channels.sms:
                enqueue(
                    conn,
                    channel="sms",
                    target=number,
                    payload=emergency,
                    now=now,
                    alert_id=alert.id,
                )
            elif self.channels.webhook_url:
                enqueue(
                    conn,
                    channel="webhook",
                    target=self.channels.webhook_url,
                    payload={**emergency, "type": "emergency"},
                    now=now,
                    alert_id=alert.id,
                )
        if self.channels.webhook_url:
            enqueue(
                conn,
                channel="webhook",
                target=self.channels.webhook_url,
                payload=payload,
                now=now,
                alert_id=alert.id,
            )
        for address in self.channels.email_to:
            enqueue(
                conn,
                channel="email",
                target=address,
                payload=payload,
                now=now,
                alert_id=alert.id,
            )

    @staticmethod
    def _record_escalation(
        conn: Conn, alert_id: int, kind: str, target: str, now: datetime, reason: str
    ) -> None:
        conn.execute(
            "INSERT INTO escalations (alert_id, target_kind, target, at, reason) "
            "VALUES (%s, %s, %s, %s, %s)",
            (alert_id, kind, target, now, reason),
        )
