"""Dispatch KPIs, a seeded week of simulated responders, and the oracle to compare with.

* :func:`dispatch_kpis` — pure: time to accept, time to arrive and the share on scene
  within the circle, from per-alert records (from the database via
  :func:`records_from_db`, or from a simulation).
* :func:`simulate_week` — a seeded population (villages, households, volunteers with
  shifts, township care workers, village doctors), alerts over a week, and seeded
  responder behaviour: whether they accept, how fast they answer, random busy
  periods the dispatcher cannot know, travel time noise.  The real :func:`decide`
  state machine dispatches; the **oracle** knows every responder's future
  availability and answers and picks the one who would arrive first.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from carecircle.platform.dispatch.models import (
    AlertInfo,
    Availability,
    DispatchState,
    Location,
    Responder,
    Shift,
    TaskStatus,
    TaskView,
    TravelMode,
    is_available,
)
from carecircle.platform.dispatch.policy import (
    Accepted,
    Declined,
    DispatchPolicy,
    Escalate,
    Event,
    Offer,
    Opened,
    Tick,
    apply_actions,
    covers_alert,
    decide,
    escalation_targets,
    next_wakeup,
    rank_candidates,
)
from carecircle.platform.dispatch.travel import GreatCircleEstimator, TravelTimeEstimator

Conn = psycopg.Connection[Any]


# --- KPIs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRecord:
    alert_id: int
    kind: str
    opened_at: datetime
    accepted_at: datetime | None = None
    on_scene_at: datetime | None = None
    responder_id: str | None = None
    escalated: bool = False

    @property
    def time_to_accept_s(self) -> float | None:
        if self.accepted_at is None:
            return None
        return (self.accepted_at - self.opened_at).total_seconds()

    @property
    def time_to_arrive_s(self) -> float | None:
        if self.on_scene_at is None:
            return None
        return (self.on_scene_at - self.opened_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "opened_at": self.opened_at.isoformat(),
            "responder_id": self.responder_id,
            "time_to_accept_s": _r(self.time_to_accept_s),
            "time_to_arrive_s": _r(self.time_to_arrive_s),
            "escalated": self.escalated,
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


@dataclass(frozen=True)
class Kpis:
    alerts: int
    accepted: int
    arrived: int
    within_circle: int
    share_within_circle: float
    escalated: int
    median_time_to_accept_s: float | None
    p90_time_to_accept_s: float | None
    median_time_to_arrive_s: float | None
    p90_time_to_arrive_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)


def dispatch_kpis(records: Sequence[AlertRecord], circle_s: float = 900.0) -> Kpis:
    """Time to accept, time to arrive, share on scene within ``circle_s`` of opening."""
    accept = [r.time_to_accept_s for r in records if r.time_to_accept_s is not None]
    arrive = [r.time_to_arrive_s for r in records if r.time_to_arrive_s is not None]
    within = sum(1 for a in arrive if a <= circle_s)
    return Kpis(
        alerts=len(records),
        accepted=len(accept),
        arrived=len(arrive),
        within_circle=within,
        share_within_circle=round(within / len(records), 4) if records else 0.0,
        escalated=sum(r.escalated for r in records),
        median_time_to_accept_s=round(statistics.median(accept), 1) if accept else None,
        p90_time_to_accept_s=_pct(accept, 0.9),
        median_time_to_arrive_s=round(statistics.median(arrive), 1) if arrive else None,
        p90_time_to_arrive_s=_pct(arrive, 0.9),
    )


def records_from_db(conn: Conn, since: datetime, until: datetime) -> list[AlertRecord]:
    """One record per dispatched alert opened in ``[since, until)``: the task that held it."""
    rows = conn.execute(
        """
        SELECT d.alert_id, d.kind, d.opened_at, t.accepted_at, t.on_scene_at, t.responder_id,
               d.escalated_at IS NOT NULL
        FROM dispatches d
        LEFT JOIN LATERAL (
            SELECT accepted_at, on_scene_at, responder_id FROM tasks
            WHERE alert_id = d.alert_id AND accepted_at IS NOT NULL
            ORDER BY accepted_at LIMIT 1) t ON true
        WHERE d.opened_at >= %s AND d.opened_at < %s ORDER BY d.alert_id
        """,
        (since, until),
    ).fetchall()
    return [AlertRecord(int(r[0]), str(r[1]), r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]


# --- a seeded world ---------------------------------------------------------------------

SIM_START = datetime(2026, 11, 30, 0, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
TOWNSHIP = Location(30.0, 120.0)
ALERT_KINDS = (
    ("fall", 0.25),
    ("sos", 0.15),
    ("prolonged_inactivity", 0.15),
    ("tachycardia", 0.1),
    ("low_spo2", 0.1),
    ("missed_wakeup", 0.1),
    ("night_wandering", 0.05),
    ("smoke", 0.04),
    ("gas", 0.03),
    ("carbon_monoxide", 0.03),
)
VOLUNTEER_SHIFTS = (
    [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "07:00", "end": "13:00"}],
    [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "12:00", "end": "20:00"}],
    [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}],
    [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "18:00", "end": "23:30"}],
    [{"days": [5, 6], "start": "06:00", "end": "22:00"}],
    [{"days": [0, 1, 2, 3, 4, 5, 6], "start": "21:00", "end": "07:00"}],
)


def _offset(origin: Location, north_m: float, east_m: float) -> Location:
    lat = origin.lat + north_m / 111_195.0
    lon = origin.lon + east_m / (111_195.0 * math.cos(math.radians(origin.lat)))
    return Location(lat, lon)


@dataclass
class World:
    sites: list[AlertInfo]  # one probe per household (id 0, kind unused)
    responders: list[Responder]
    alerts: list[AlertInfo]


def make_world(
    seed: int,
    *,
    villages: int = 6,
    households_per_village: int = 30,
    volunteers_per_village: int = 6,
    alerts: int = 150,
    days: int = 7,
) -> World:
    rng = random.Random(f"world:{seed}")
    sites: list[AlertInfo] = []
    responders: list[Responder] = []
    for v in range(villages):
        angle = 2 * math.pi * v / villages
        radius = rng.uniform(1500, 4000)
        centre = _offset(TOWNSHIP, radius * math.cos(angle), radius * math.sin(angle))
        vid = f"vil{v}"
        places = frozenset({vid, "town0", "county0", "pref0"})
        for h in range(households_per_village):
            loc = _offset(centre, rng.gauss(0, 350), rng.gauss(0, 350))
            sites.append(AlertInfo(0, "", "high", f"hh{v}_{h}", loc, SIM_START, places=places))
        for i in range(volunteers_per_village):
            loc = _offset(centre, rng.gauss(0, 300), rng.gauss(0, 300))
            shifts = tuple(Shift.parse(s) for s in rng.choice(VOLUNTEER_SHIFTS))
            responders.append(
                Responder(
                    id=f"vol{v}_{i}",
                    kind="volunteer",
                    location=loc,
                    travel_mode=TravelMode.EBIKE if rng.random() < 0.4 else TravelMode.WALK,
                    skills=frozenset(s for s in ("first_aid", "can_lift") if rng.random() < 0.4),
                    covers=frozenset({vid}),
                    shifts=shifts,
                )
            )
        if v % 2 == 0:
            responders.append(
                Responder(
                    id=f"doc{v}",
                    kind="doctor",
                    location=centre,
                    travel_mode=TravelMode.EBIKE,
                    skills=frozenset({"first_aid", "nursing"}),
                    covers=frozenset({vid, f"vil{(v + 1) % villages}"}),
                    shifts=(
                        Shift.parse({"days": [0, 1, 2, 3, 4, 5], "start": "08:00", "end": "17:00"}),
                    ),
                )
            )
    for c in range(2):
        responders.append(
            Responder(
                id=f"cw{c}",
                kind="care_worker",
                location=_offset(TOWNSHIP, 100 * c, 0),
                travel_mode=TravelMode.CAR,
                skills=frozenset({"first_aid", "nursing", "can_lift"}),
                covers=frozenset({"town0"}),
                shifts=(
                    Shift.parse(
                        {
                            "days": [0, 1, 2, 3, 4, 5, 6],
                            "start": "08:00" if c == 0 else "20:00",
                            "end": "20:00" if c == 0 else "08:00",
                        }
                    ),
                ),
            )
        )
    kinds = [k for k, _ in ALERT_KINDS]
    weights = [w for _, w in ALERT_KINDS]
    out = []
    for a in range(alerts):
        site = rng.choice(sites)
        at = SIM_START + timedelta(seconds=rng.uniform(0, days * 86400))
        out.append(
            AlertInfo(
                a + 1,
                rng.choices(kinds, weights)[0],
                "high",
                site.site_id,
                site.location,
                at.astimezone(UTC),
                places=site.places,
            )
        )
    out.sort(key=lambda x: x.opened_at)
    return World(sites, responders, out)


@dataclass
class Behaviour:
    """Seeded, deterministic responder behaviour shared by the dispatcher run and the oracle."""

    seed: int
    responders: list[Responder]
    days: int = 7
    busy: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for r in self.responders:
            rng = random.Random(f"busy:{self.seed}:{r.id}")
            periods = []
            for d in range(self.days + 1):
                for _ in range(rng.randint(0, 3)):
                    start = SIM_START + timedelta(days=d, minutes=rng.uniform(6 * 60, 22 * 60))
                    periods.append((start, start + timedelta(minutes=rng.uniform(30, 180))))
            self.busy[r.id] = periods

    def free(
        self, r: Responder, at: datetime, tz: ZoneInfo, holding_until: datetime | None
    ) -> bool:
        """Truly free at ``at``: on shift, not in a private busy period, not on a task."""
        if holding_until is not None and holding_until > at:
            return False
        if not is_available(r, at, tz, holding=False):
            return False
        return not any(s <= at < e for s, e in self.busy[r.id])

    def reaction(self, alert_id: int, r: Responder) -> tuple[bool, float, bool]:
        """``(would accept if free, answer delay s, silent if not accepting)``."""
        rng = random.Random(f"react:{self.seed}:{alert_id}:{r.id}")
        p_accept = 0.9 if r.kind in ("care_worker", "doctor") else 0.75
        accepts = rng.random() < p_accept
        delay = min(600.0, rng.lognormvariate(math.log(40), 0.6))
        silent = rng.random() < 0.5
        return accepts, delay, silent

    def travel_s(self, alert_id: int, r: Responder, eta_s: float) -> float:
        rng = random.Random(f"travel:{self.seed}:{alert_id}:{r.id}")
        return eta_s * rng.uniform(0.85, 1.2)

    def on_scene_s(self, alert_id: int) -> float:
        return random.Random(f"scene:{self.seed}:{alert_id}").uniform(20 * 60, 60 * 60)


def run_dispatcher(
    world: World,
    behaviour: Behaviour,
    policy: DispatchPolicy,
    estimator: TravelTimeEstimator,
    tz: ZoneInfo,
    *,
    horizon: timedelta = timedelta(hours=2),
) -> list[AlertRecord]:
    """Dispatch every alert with the real :func:`decide` and simulated responders."""
    by_id = {r.id: r for r in world.responders}
    holding: dict[str, datetime] = {}
    return [
        _dispatch_one(alert, world, by_id, behaviour, policy, estimator, tz, holding, horizon)
        for alert in world.alerts
    ]


def _dispatch_one(
    alert: AlertInfo,
    world: World,
    by_id: dict[str, Responder],
    behaviour: Behaviour,
    policy: DispatchPolicy,
    estimator: TravelTimeEstimator,
    tz: ZoneInfo,
    holding: dict[str, datetime],
    horizon: timedelta,
) -> AlertRecord:
    t0 = alert.opened_at
    heap: list[tuple[datetime, int, str, str]] = []
    seq = 0

    def known(r: Responder, at: datetime) -> bool:
        return is_available(r, at, tz, holding=holding.get(r.id, t0) > at)

    def push(at: datetime, what: str, rid: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (at, seq, what, rid))

    def react(rid: str, at: datetime) -> None:
        r = by_id[rid]
        accepts, delay, silent = behaviour.reaction(alert.id, r)
        if accepts and behaviour.free(r, at, tz, holding.get(rid)):
            push(at + timedelta(seconds=delay), "accept", rid)
        elif not silent:
            push(at + timedelta(seconds=delay), "decline", rid)

    def step(state: DispatchState, event: Event, now: datetime) -> DispatchState:
        cands = rank_candidates(alert, world.responders, known, estimator, now, policy)
        state = replace(state, candidates=tuple(cands))
        actions = decide(state, event, now, policy)
        state = apply_actions(state, actions, now)
        for a in actions:
            if isinstance(a, Offer):
                react(a.responder_id, now)
            elif isinstance(a, Escalate):
                kinds = [k for k in a.target_kinds if k not in ("family", "emergency")]
                extra = []
                for _, rid in escalation_targets(alert, world.responders, known, now, kinds):
                    if rid in state.asked():
                        continue
                    r = by_id[rid]
                    eta = estimator.eta_s(r.location, alert.location, r.travel_mode)
                    extra.append(TaskView(rid, TaskStatus.OFFERED, "escalation", now, eta_s=eta))
                    react(rid, now)
                state = replace(state, tasks=state.tasks + tuple(extra))
        wake = next_wakeup(state, policy)
        if wake is not None:
            push(max(wake, now), "tick")
        return state

    state = step(DispatchState(alert=alert, started_at=t0), Opened(), t0)
    record = AlertRecord(alert.id, alert.kind, t0)
    while heap:
        at, _, what, rid = heapq.heappop(heap)
        if at > t0 + horizon:
            break
        task = next((t for t in state.tasks if t.responder_id == rid), None)
        if what == "tick":
            state = step(state, Tick(), at)
        elif task is None or task.status is not TaskStatus.OFFERED:
            continue  # answered an offer that expired or was released
        elif what == "decline":
            tasks = tuple(
                replace(t, status=TaskStatus.DECLINED) if t.responder_id == rid else t
                for t in state.tasks
            )
            state = step(replace(state, tasks=tasks), Declined(rid), at)
        else:  # accept: "I go"
            tasks = tuple(
                replace(t, status=TaskStatus.ACCEPTED) if t.responder_id == rid else t
                for t in state.tasks
            )
            state = step(replace(state, tasks=tasks), Accepted(rid), at)
            r = by_id[rid]
            eta = estimator.eta_s(r.location, alert.location, r.travel_mode)
            arrive = at + timedelta(seconds=behaviour.travel_s(alert.id, r, eta))
            holding[rid] = arrive + timedelta(seconds=behaviour.on_scene_s(alert.id))
            record = replace(record, accepted_at=at, on_scene_at=arrive, responder_id=rid)
            break
    return replace(record, escalated=state.escalated)


def run_oracle(
    world: World,
    behaviour: Behaviour,
    policy: DispatchPolicy,
    estimator: TravelTimeEstimator,
    tz: ZoneInfo,
) -> list[AlertRecord]:
    """Knows who is truly free and who would accept, and how fast: picks the first arrival."""
    holding: dict[str, datetime] = {}
    records = []
    for alert in world.alerts:
        t0 = alert.opened_at
        best: tuple[datetime, datetime, str] | None = None
        for r in world.responders:
            if r.kind not in policy.offer_kinds or not covers_alert(r, alert):
                continue
            accepts, delay, _ = behaviour.reaction(alert.id, r)
            if not accepts or not behaviour.free(r, t0, tz, holding.get(r.id)):
                continue
            eta = estimator.eta_s(r.location, alert.location, r.travel_mode)
            accepted = t0 + timedelta(seconds=delay)
            arrive = accepted + timedelta(seconds=behaviour.travel_s(alert.id, r, eta))
            if best is None or (arrive, r.id) < (best[1], best[2]):
                best = (accepted, arrive, r.id)
        if best is None:
            records.append(AlertRecord(alert.id, alert.kind, t0))
            continue
        holding[best[2]] = best[1] + timedelta(seconds=behaviour.on_scene_s(alert.id))
        records.append(AlertRecord(alert.id, alert.kind, t0, best[0], best[1], best[2]))
    return records


@dataclass(frozen=True)
class Comparison:
    seed: int
    dispatcher: Kpis
    oracle: Kpis
    ratio: float
    records: list[AlertRecord]
    oracle_records: list[AlertRecord]

    def as_dict(self, *, per_alert: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seed": self.seed,
            "dispatcher": self.dispatcher.as_dict(),
            "oracle": self.oracle.as_dict(),
            "ratio_share_within_circle": self.ratio,
        }
        if per_alert:
            out["alerts"] = [r.as_dict() for r in self.records]
        return out


def simulate_week(
    seed: int,
    *,
    policy: DispatchPolicy | None = None,
    estimator: TravelTimeEstimator | None = None,
    tz: ZoneInfo | None = None,
    alerts: int = 150,
) -> Comparison:
    policy = policy or DispatchPolicy()
    estimator = estimator or GreatCircleEstimator()
    tz = tz or ZoneInfo("Asia/Shanghai")
    world = make_world(seed, alerts=alerts)
    behaviour = Behaviour(seed, world.responders)
    ours = run_dispatcher(world, behaviour, policy, estimator, tz)
    oracle = run_oracle(world, behaviour, policy, estimator, tz)
    k_ours = dispatch_kpis(ours, policy.circle_s)
    k_oracle = dispatch_kpis(oracle, policy.circle_s)
    ratio = (
        round(k_ours.share_within_circle / k_oracle.share_within_circle, 4)
        if k_oracle.share_within_circle
        else 0.0
    )
    return Comparison(seed, k_ours, k_oracle, ratio, ours, oracle)


def eval_section(
    conn: Conn | None,
    since: datetime,
    until: datetime,
    *,
    seed: int = 1,
    policy: DispatchPolicy | None = None,
) -> dict[str, Any]:
    """The dispatch section of ``carecircle eval``: KPIs of the real tasks of alerts
    opened in ``[since, until)`` (when a connection is given) and the simulated week
    against the oracle for ``seed``."""
    policy = policy or DispatchPolicy()
    out: dict[str, Any] = {}
    if conn is not None:
        records = records_from_db(conn, since, until)
        out["alerts"] = [r.as_dict() for r in records]
        out["kpis"] = dispatch_kpis(records, policy.circle_s).as_dict()
    out["simulated_week"] = simulate_week(seed, policy=policy).as_dict()
    return out


__all__ = [
    "AlertRecord",
    "Availability",
    "Comparison",
    "Kpis",
    "dispatch_kpis",
    "eval_section",
    "records_from_db",
    "simulate_week",
]
