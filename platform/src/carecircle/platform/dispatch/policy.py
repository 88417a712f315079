"""Pure dispatch decisions: who to ask, when to ask the next ones, when to escalate.

``rank_candidates`` orders the available responders for an alert;
``decide(state, event, now, policy)`` is a small state machine over typed data that
returns the :class:`Action`s to take.  The service applies them to the database,
the notifiers tell people.  Nothing here reads a clock, a database or a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from carecircle.platform.dispatch.models import (
    HOLDING,
    AlertInfo,
    Candidate,
    DispatchState,
    Responder,
    TaskStatus,
    TaskView,
)
from carecircle.platform.dispatch.travel import TravelTimeEstimator

RESPONDER_KINDS = ("volunteer", "care_worker", "facility_staff", "family", "doctor")
ESCALATION_KINDS = ("care_worker", "facility_staff", "family", "doctor", "emergency")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class KindRule(BaseModel):
    """How alerts of one kind are dispatched (optionally for one site)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dispatch: bool = True
    #: Escalate at once, in parallel with offering volunteers.
    critical: bool = False
    #: A candidate must have all of these.
    required_skills: tuple[str, ...] = ()
    #: A candidate with none of these is ranked as if ``missing_skill_penalty_s`` farther.
    preferred_skills: tuple[str, ...] = ()
    #: Who is told on escalation; ``None`` = the policy's default list.
    escalate_to: tuple[str, ...] | None = None


def _default_kinds() -> dict[str, KindRule]:
    critical = KindRule(critical=True, preferred_skills=("first_aid",))
    vitals = KindRule(preferred_skills=("first_aid", "nursing"))
    technical = KindRule(dispatch=False)
    return {
        "sos": critical,
        "fall": KindRule(critical=True, preferred_skills=("can_lift", "first_aid")),
        "smoke": critical,
        "gas": critical,
        "carbon_monoxide": critical,
        "tachycardia": vitals,
        "bradycardia": vitals,
        "low_spo2": vitals,
        "fever": vitals,
        "vitals_anomaly": vitals,
        "device_offline": technical,
        "low_battery": technical,
        "gateway_offline": technical,
    }


class DispatchPolicy(BaseModel):
    """Dispatch parameters, with per-kind and per-site rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: How many candidates are asked in parallel (more answer sooner, but the first to
    #: accept is then less often the nearest; 2 did best in the simulated week).
    k: int = Field(default=2, ge=1, le=20)
    #: An unanswered offer expires after this and the next candidate is asked.
    offer_timeout_s: float = Field(default=120.0, gt=0)
    #: No acceptance this long after the alert opened → escalate.
    escalate_after_s: float = Field(default=300.0, gt=0)
    #: The circle: a best ETA beyond this escalates at once.
    circle_s: float = Field(default=900.0, gt=0)
    #: Candidates farther than this are never offered (professionals are escalated to).
    max_eta_s: float = Field(default=2700.0, gt=0)
    missing_skill_penalty_s: float = Field(default=120.0, ge=0)
    #: Fairness across volunteers: each task in the recent window ranks them this much later.
    fairness_penalty_s: float = Field(default=20.0, ge=0)
    fairness_cap: int = Field(default=5, ge=0)
    #: Alerts less severe than this are not dispatched.
    min_severity: str = "medium"
    #: Kinds of responder that may be offered a task.
    offer_kinds: tuple[str, ...] = RESPONDER_KINDS
    escalate_to: tuple[str, ...] = ("care_worker", "facility_staff", "family", "emergency")
    emergency_number: str | None = "120"
    kinds: dict[str, KindRule] = Field(default_factory=_default_kinds)
    #: ``{site_id: {kind: rule}}`` overrides.
    sites: dict[str, dict[str, KindRule]] = Field(default_factory=dict)

    def rule(self, kind: str, site_id: str) -> KindRule:
        site_rules = self.sites.get(site_id, {})
        return site_rules.get(kind) or self.kinds.get(kind) or KindRule()

    def targets(self, kind: str, site_id: str) -> tuple[str, ...]:
        rule = self.rule(kind, site_id)
        return rule.escalate_to if rule.escalate_to is not None else self.escalate_to

    def dispatches(self, kind: str, severity: str, site_id: str) -> bool:
        if not self.rule(kind, site_id).dispatch:
            return False
        rule = self.rule(kind, site_id)
        return rule.critical or SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(
            self.min_severity, 1
        )


# --- candidates -----------------------------------------------------------------------


def covers_alert(responder: Responder, alert: AlertInfo) -> bool:
    """A responder covers an alert when their places include the alert's village or an
    ancestor, or they work at its site; a responder with no places and no site covers
    whatever is near enough."""
    if responder.site_id is not None and responder.site_id == alert.site_id:
        return True
    if responder.covers:
        return bool(responder.covers & alert.places)
    return responder.site_id is None


def rank_candidates(
    alert: AlertInfo,
    responders: Iterable[Responder],
    availability_at: Callable[[Responder, datetime], bool],
    estimator: TravelTimeEstimator,
    now: datetime,
    policy: DispatchPolicy,
    recent_load: Mapping[str, int] | None = None,
) -> list[Candidate]:
    """Available, covering, skilled-enough responders, best first.

    The score is the estimated arrival plus a penalty for lacking a preferred skill
    and, for volunteers, a small one per recent task (fairness); ties go by id.
    """
    rule = policy.rule(alert.kind, alert.site_id)
    load = recent_load or {}
    out: list[Candidate] = []
    for r in responders:
        if r.kind not in policy.offer_kinds or not covers_alert(r, alert):
            continue
        if not set(rule.required_skills) <= r.skills:
            continue
        if not availability_at(r, now):
            continue
        eta = estimator.eta_s(r.location, alert.location, r.travel_mode)
        score = eta
        if rule.preferred_skills and not (set(rule.preferred_skills) & r.skills):
            score += policy.missing_skill_penalty_s
        if r.kind == "volunteer":
            score += policy.fairness_penalty_s * min(load.get(r.id, 0), policy.fairness_cap)
        out.append(
            Candidate(
                responder_id=r.id,
                kind=r.kind,
                eta_s=eta,
                distance_m=estimator.distance_m(r.location, alert.location),
                score_s=score,
            )
        )
    out.sort(key=lambda c: (c.score_s, c.responder_id))
    return out


def escalation_targets(
    alert: AlertInfo,
    responders: Iterable[Responder],
    availability_at: Callable[[Responder, datetime], bool],
    now: datetime,
    kinds: Sequence[str],
) -> list[tuple[str, str]]:
    """``(target_kind, responder_id)`` for the professional kinds in ``kinds``: those who
    cover the alert and are available, or, when none of a kind is, all who cover it."""
    out: list[tuple[str, str]] = []
    covering = [r for r in responders if covers_alert(r, alert) and r.kind in kinds]
    for kind in kinds:
        of_kind = [r for r in covering if r.kind == kind]
        available = [r for r in of_kind if availability_at(r, now)]
        out.extend((kind, r.id) for r in sorted(available or of_kind, key=lambda r: r.id))
    return out


# --- the state machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """Dispatch took the alert on."""


@dataclass(frozen=True)
class Declined:
    responder_id: str


@dataclass(frozen=True)
class Accepted:
    """``responder_id`` holds the alert now (the service already locked it)."""

    responder_id: str


@dataclass(frozen=True)
class Tick:
    """Time passed: offers may have expired, the escalation deadline may have come."""


@dataclass(frozen=True)
class AlertClosed:
    """The alert was resolved or cancelled elsewhere."""


Event = Opened | Declined | Accepted | Tick | AlertClosed


@dataclass(frozen=True)
class Offer:
    responder_id: str
    eta_s: float
    distance_m: float
    deadline: datetime


@dataclass(frozen=True)
class Expire:
    responder_ids: tuple[str, ...]


@dataclass(frozen=True)
class Release:
    responder_ids: tuple[str, ...]
    reason: str  # taken | alert_closed


@dataclass(frozen=True)
class CancelHolder:
    responder_id: str


@dataclass(frozen=True)
class Escalate:
    #: critical | nobody_available | nobody_accepted | beyond_circle | no_acceptance |
    #: not_on_scene (the one who accepted is not there when the circle is over)
    reason: str
    target_kinds: tuple[str, ...]


@dataclass(frozen=True)
class Close:
    pass


Action = Offer | Expire | Release | CancelHolder | Escalate | Close


def decide(
    state: DispatchState, event: Event, now: datetime, policy: DispatchPolicy
) -> list[Action]:
    """The actions that follow ``event`` in ``state`` at ``now``."""
    alert = state.alert
    if state.closed:
        return []
    if isinstance(event, AlertClosed):
        actions: list[Action] = []
        pending = tuple(t.responder_id for t in state.outstanding())
        if pending:
            actions.append(Release(pending, "alert_closed"))
        holder = state.holder
        if holder is not None:
            actions.append(CancelHolder(holder.responder_id))
        actions.append(Close())
        return actions
    if isinstance(event, Accepted):
        others = tuple(
            t.responder_id for t in state.outstanding() if t.responder_id != event.responder_id
        )
        return [Release(others, "taken")] if others else []
    holder = state.holder
    if holder is not None:
        # someone goes; if they are not there when the circle is over, escalate
        late = (now - alert.opened_at).total_seconds() >= policy.circle_s
        if late and not state.escalated and holder.status is not TaskStatus.ON_SCENE:
            return [Escalate("not_on_scene", policy.targets(alert.kind, alert.site_id))]
        return []

    actions = []
    offers = state.outstanding("offer")
    expired = tuple(t.responder_id for t in offers if t.deadline is not None and t.deadline <= now)
    if expired:
        actions.append(Expire(expired))
    live = [t for t in offers if t.responder_id not in expired]
    asked = state.asked()
    fresh = [
        c for c in state.candidates if c.responder_id not in asked and c.eta_s <= policy.max_eta_s
    ]
    new = fresh[: max(0, policy.k - len(live))]
    deadline = now + timedelta(seconds=policy.offer_timeout_s)
    actions.extend(Offer(c.responder_id, c.eta_s, c.distance_m, deadline) for c in new)

    if not state.escalated:
        reason = _escalation_reason(state, event, now, policy, live_count=len(live), new=new)
        if reason is not None:
            actions.append(Escalate(reason, policy.targets(alert.kind, alert.site_id)))
    return actions


def _escalation_reason(
    state: DispatchState,
    event: Event,
    now: datetime,
    policy: DispatchPolicy,
    *,
    live_count: int,
    new: Sequence[Candidate],
) -> str | None:
    alert = state.alert
    if policy.rule(alert.kind, alert.site_id).critical:
        return "critical"
    if live_count == 0 and not new:
        tried = any(t.via == "offer" for t in state.tasks)
        return "nobody_accepted" if tried else "nobody_available"
    etas = [t.eta_s for t in state.outstanding("offer") if t.eta_s is not None] + [
        c.eta_s for c in new
    ]
    if etas and min(etas) > policy.circle_s:
        return "beyond_circle"
    if (now - alert.opened_at).total_seconds() >= policy.escalate_after_s:
        return "no_acceptance"
    return None


def apply_actions(state: DispatchState, actions: Sequence[Action], now: datetime) -> DispatchState:
    """The state after ``actions`` (pure; used by simulations and tests, the service
    applies the same actions to the database)."""
    tasks = list(state.tasks)
    escalated, closed = state.escalated, state.closed

    def set_status(ids: Iterable[str], old: set[TaskStatus], new: TaskStatus) -> None:
        wanted = set(ids)
        for i, t in enumerate(tasks):
            if t.responder_id in wanted and t.status in old:
                tasks[i] = replace(t, status=new)

    for action in actions:
        if isinstance(action, Offer):
            if action.responder_id not in {t.responder_id for t in tasks}:
                tasks.append(
                    TaskView(
                        action.responder_id,
                        TaskStatus.OFFERED,
                        "offer",
                        now,
                        deadline=action.deadline,
                        eta_s=action.eta_s,
                    )
                )
        elif isinstance(action, Expire):
            set_status(action.responder_ids, {TaskStatus.OFFERED}, TaskStatus.EXPIRED)
        elif isinstance(action, Release):
            set_status(action.responder_ids, {TaskStatus.OFFERED}, TaskStatus.RELEASED)
        elif isinstance(action, CancelHolder):
            set_status([action.responder_id], set(HOLDING), TaskStatus.CANCELLED)
        elif isinstance(action, Escalate):
            escalated = True
        elif isinstance(action, Close):
            closed = True
    return replace(state, tasks=tuple(tasks), escalated=escalated, closed=closed)


def next_wakeup(state: DispatchState, policy: DispatchPolicy) -> datetime | None:
    """When :class:`Tick` next has something to do for this state (None: nothing)."""
    if state.closed:
        return None
    holder = state.holder
    if holder is not None:
        if state.escalated or holder.status is TaskStatus.ON_SCENE:
            return None
        return state.alert.opened_at + timedelta(seconds=policy.circle_s)
    times = [t.deadline for t in state.outstanding("offer") if t.deadline is not None]
    if not state.escalated:
        times.append(state.alert.opened_at + timedelta(seconds=policy.escalate_after_s))
    return min(times) if times else None


__all__ = [
    "Accepted",
    "Action",
    "AlertClosed",
    "CancelHolder",
    "Close",
    "Declined",
    "DispatchPolicy",
    "Escalate",
    "Event",
    "Expire",
    "KindRule",
    "Offer",
    "Opened",
    "Release",
    "TaskStatus",
    "Tick",
    "apply_actions",
    "decide",
    "escalation_targets",
    "next_wakeup",
    "rank_candidates",
]
