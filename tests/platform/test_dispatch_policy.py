"""Pure dispatch core: travel time, shifts, ranking and the decide() state machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carecircle.common.clock import ManualClock
from carecircle.common.errors import ContractError
from carecircle.platform.dispatch.models import (
    AlertInfo,
    Availability,
    DispatchState,
    Location,
    Responder,
    Shift,
    TaskStatus,
    TravelMode,
    is_available,
    is_on_shift,
)
from carecircle.platform.dispatch.policy import (
    Accepted,
    AlertClosed,
    CancelHolder,
    Close,
    Declined,
    DispatchPolicy,
    Escalate,
    Expire,
    KindRule,
    Offer,
    Opened,
    Release,
    Tick,
    apply_actions,
    decide,
    escalation_targets,
    next_wakeup,
    rank_candidates,
)
from carecircle.platform.dispatch.travel import GreatCircleEstimator, haversine_m

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
HOME = Location(30.0, 120.0)
EST = GreatCircleEstimator()


def north(metres: float) -> Location:
    return Location(HOME.lat + metres / 111_195.0, HOME.lon)


def vol(rid: str, metres: float, **kw: object) -> Responder:
    base: dict[str, object] = {
        "id": rid,
        "kind": "volunteer",
        "location": north(metres),
        "availability": Availability.ON_DUTY,
        "covers": frozenset({"v1"}),
    }
    base.update(kw)
    return Responder(**base)  # type: ignore[arg-type]


def alert(kind: str = "tachycardia", severity: str = "high") -> AlertInfo:
    return AlertInfo(
        id=1,
        kind=kind,
        severity=severity,
        site_id="s1",
        location=HOME,
        opened_at=T0,
        resident_id="r1",
        places=frozenset({"v1", "t1", "c1", "p1"}),
    )


def always(_: Responder, __: datetime) -> bool:
    return True


# --- travel -----------------------------------------------------------------------------


def test_haversine_and_eta_by_mode() -> None:
    assert haversine_m(Location(0, 0), Location(1, 0)) == pytest.approx(111_195, rel=1e-3)
    est = GreatCircleEstimator(detour=1.3)
    one_km = north(1000)
    walk = est.eta_s(HOME, one_km, TravelMode.WALK)
    assert walk == pytest.approx(60 + 1300 / (4.5 / 3.6), rel=1e-3)
    assert est.eta_s(HOME, one_km, TravelMode.EBIKE) < walk
    assert est.eta_s(HOME, north(10_000), TravelMode.CAR) < est.eta_s(
        HOME, north(10_000), TravelMode.EBIKE
    )
    with pytest.raises(ValueError):
        GreatCircleEstimator(detour=0.9)


# --- shifts -----------------------------------------------------------------------------


def test_shifts_day_overnight_and_timezone() -> None:
    day = Shift.parse({"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"})
    night = Shift.parse({"days": [4], "start": "22:00", "end": "06:00"})  # Friday night
    r = vol("a", 100, availability=Availability.OFF_DUTY, shifts=(day, night))
    assert is_on_shift(r, T0, TZ)  # Monday 10:00 local
    assert not is_on_shift(r, T0, ZoneInfo("UTC"))  # Monday 02:00 UTC: not on
    sat_3am = datetime(2026, 12, 5, 3, 0, tzinfo=TZ)
    assert is_on_shift(r, sat_3am, TZ)
    assert not is_on_shift(r, datetime(2026, 12, 6, 3, 0, tzinfo=TZ), TZ)  # Sunday 03:00
    assert not is_on_shift(r, datetime(2026, 12, 5, 10, 0, tzinfo=TZ), TZ)  # Saturday day
    assert is_available(r, T0, TZ, holding=False)
    assert not is_available(r, T0, TZ, holding=True)
    busy = vol("b", 100, availability=Availability.BUSY, shifts=(day,))
    assert not is_available(busy, T0, TZ, holding=False)
    on_duty = vol("c", 100, availability=Availability.ON_DUTY)
    assert is_available(on_duty, sat_3am, TZ, holding=False)
    with pytest.raises(ContractError):
        Shift.parse({"days": [7], "start": "08:00", "end": "09:00"})
    with pytest.raises(ContractError):
        Shift.parse({"days": [1], "start": "8 am", "end": "09:00"})
    assert Shift(frozenset({0}), time(0), time(0)).covers(datetime(2026, 11, 30, 23, 0))


# --- ranking ----------------------------------------------------------------------------


def test_rank_by_eta_filters_and_penalties() -> None:
    policy = DispatchPolicy()
    responders = [
        vol("far", 1500),
        vol("near", 200),
        vol("bike", 1500, travel_mode=TravelMode.EBIKE),
        vol("elsewhere", 100, covers=frozenset({"v9"})),
        vol("off", 100, availability=Availability.OFF_DUTY),
        Responder("staff", "facility_staff", north(50), site_id="s1"),
        Responder("staff2", "facility_staff", north(50), site_id="s9"),
    ]

    def available(r: Responder, at: datetime) -> bool:
        return is_available(r, at, TZ, holding=False)

    ranked = rank_candidates(alert(), responders, available, EST, T0, policy)
    assert [c.responder_id for c in ranked] == ["near", "bike", "far"]
    assert ranked[0].eta_s < ranked[1].eta_s < ranked[2].eta_s
    # the facility's own staff cover it when on duty
    on = [
        *responders[:-2],
        Responder(
            "staff", "facility_staff", north(50), site_id="s1", availability=Availability.ON_DUTY
        ),
    ]
    assert rank_candidates(alert(), on, available, EST, T0, policy)[0].responder_id == "staff"
    # required skill filters; preferred skill and fairness re-order near-equal candidates
    strict = DispatchPolicy(kinds={"fall": KindRule(required_skills=("can_lift",))})
    lifters = [vol("weak", 100), vol("strong", 180, skills=frozenset({"can_lift"}))]
    assert [
        c.responder_id for c in rank_candidates(alert("fall"), lifters, always, EST, T0, strict)
    ] == ["strong"]
    prefer = DispatchPolicy(kinds={"fall": KindRule(preferred_skills=("can_lift",))})
    order = rank_candidates(alert("fall"), lifters, always, EST, T0, prefer)
    assert [c.responder_id for c in order] == ["strong", "weak"]
    fair = rank_candidates(
        alert(), [vol("x", 100), vol("y", 110)], always, EST, T0, policy, recent_load={"x": 5}
    )
    assert [c.responder_id for c in fair] == ["y", "x"]


def test_escalation_targets_prefer_available_professionals() -> None:
    pros = [
        Responder("cw1", "care_worker", north(3000), covers=frozenset({"t1"})),
        Responder(
            "cw2",
            "care_worker",
            north(3000),
            covers=frozenset({"t1"}),
            availability=Availability.ON_DUTY,
        ),
        Responder("cw3", "care_worker", north(3000), covers=frozenset({"t9"})),
        Responder("fs1", "facility_staff", north(10), site_id="s1"),
        vol("v", 10),
    ]

    def available(r: Responder, at: datetime) -> bool:
        return is_available(r, at, TZ, holding=False)

    out = escalation_targets(alert(), pros, available, T0, ["care_worker", "facility_staff"])
    # cw2 is the available care worker; nobody of facility staff is, so all of them are told
    assert out == [("care_worker", "cw2"), ("facility_staff", "fs1")]


# --- the state machine ------------------------------------------------------------------


def start(
    kind: str = "tachycardia",
    responders: list[Responder] | None = None,
    policy: DispatchPolicy | None = None,
) -> tuple[DispatchState, DispatchPolicy]:
    policy = policy or DispatchPolicy(k=2, offer_timeout_s=60, escalate_after_s=300)
    rs = responders if responders is not None else [vol(f"v{i}", 100 * i) for i in range(1, 6)]
    a = alert(kind)
    cands = tuple(rank_candidates(a, rs, always, EST, T0, policy))
    return DispatchState(alert=a, candidates=cands), policy


def with_status(state: DispatchState, rid: str, status: TaskStatus) -> DispatchState:
    tasks = tuple(replace(t, status=status) if t.responder_id == rid else t for t in state.tasks)
    return replace(state, tasks=tasks)


def offered(state: DispatchState) -> list[str]:
    return [t.responder_id for t in state.outstanding()]


def test_open_offers_k_nearest_in_parallel_without_escalating() -> None:
    state, policy = start()
    actions = decide(state, Opened(), T0, policy)
    assert [a.responder_id for a in actions if isinstance(a, Offer)] == ["v1", "v2"]
    assert all(a.deadline == T0 + timedelta(seconds=60) for a in actions if isinstance(a, Offer))
    assert not any(isinstance(a, Escalate) for a in actions)


def test_first_acceptor_wins_and_the_others_are_released() -> None:
    state, policy = start()
    state = apply_actions(state, decide(state, Opened(), T0, policy), T0)
    state = with_status(state, "v1", TaskStatus.ACCEPTED)
    actions = decide(state, Accepted("v1"), T0, policy)
    assert actions == [Release(("v2",), "taken")]
    # while held, time passing within the circle changes nothing
    assert decide(state, Tick(), T0 + timedelta(minutes=14), policy) == []
    assert next_wakeup(state, policy) == T0 + timedelta(minutes=15)


def test_decline_and_timeout_lead_to_the_next_candidates() -> None:
    clock = ManualClock(T0)
    state, policy = start()
    state = apply_actions(state, decide(state, Opened(), clock.now(), policy), clock.now())
    # v1 declines: v3 is asked at once
    state = with_status(state, "v1", TaskStatus.DECLINED)
    actions = decide(state, Declined("v1"), clock.now(), policy)
    assert [a.responder_id for a in actions if isinstance(a, Offer)] == ["v3"]
    state = apply_actions(state, actions, clock.now())
    # nothing is due before the deadline
    clock.advance(timedelta(seconds=59))
    assert decide(state, Tick(), clock.now(), policy) == []
    assert next_wakeup(state, policy) == T0 + timedelta(seconds=60)
    # v2 and v3 time out: both expire, v4 and v5 are asked
    clock.advance(timedelta(seconds=1))
    actions = decide(state, Tick(), clock.now(), policy)
    assert actions[0] == Expire(("v2", "v3"))
    assert [a.responder_id for a in actions if isinstance(a, Offer)] == ["v4", "v5"]
    state = apply_actions(state, actions, clock.now())
    assert offered(state) == ["v4", "v5"]
    # they time out too: nobody is left, escalate once
    clock.advance(timedelta(seconds=60))
    actions = decide(state, Tick(), clock.now(), policy)
    assert actions == [
        Expire(("v4", "v5")),
        Escalate("nobody_accepted", ("care_worker", "facility_staff", "family", "emergency")),
    ]
    state = apply_actions(state, actions, clock.now())
    assert state.escalated
    assert decide(state, Tick(), clock.now() + timedelta(hours=1), policy) == []


def test_no_acceptance_within_T_escalates_while_offers_continue() -> None:
    state, policy = start(policy=DispatchPolicy(k=1, offer_timeout_s=200, escalate_after_s=300))
    state = apply_actions(state, decide(state, Opened(), T0, policy), T0)
    at = T0 + timedelta(seconds=300)
    assert next_wakeup(state, policy) == T0 + timedelta(seconds=200)
    actions = decide(state, Tick(), at, policy)
    assert Expire(("v1",)) in actions
    assert any(isinstance(a, Offer) and a.responder_id == "v2" for a in actions)
    assert any(isinstance(a, Escalate) and a.reason == "no_acceptance" for a in actions)


@pytest.mark.parametrize("kind", ["sos", "fall", "smoke", "gas", "carbon_monoxide"])
def test_critical_kinds_escalate_at_once_in_parallel_with_offers(kind: str) -> None:
    state, policy = start(kind)
    actions = decide(state, Opened(), T0, policy)
    assert sum(isinstance(a, Offer) for a in actions) == 2
    esc = [a for a in actions if isinstance(a, Escalate)]
    assert len(esc) == 1 and esc[0].reason == "critical"
    assert set(esc[0].target_kinds) == {"care_worker", "facility_staff", "family", "emergency"}


def test_nobody_available_escalates_immediately_and_beyond_circle_too() -> None:
    state, policy = start(responders=[])
    assert decide(state, Opened(), T0, policy) == [Escalate("nobody_available", policy.escalate_to)]
    far = [vol("far", 1400)]  # about 25 minutes on foot
    state, policy = start(responders=far)
    actions = decide(state, Opened(), T0, policy)
    assert isinstance(actions[0], Offer)
    assert actions[-1] == Escalate("beyond_circle", policy.escalate_to)
    # beyond max_eta_s: not offered at all
    state, policy = start(responders=[vol("very_far", 6000)])
    assert decide(state, Opened(), T0, policy) == [Escalate("nobody_available", policy.escalate_to)]


def test_site_and_kind_rules() -> None:
    policy = DispatchPolicy(
        sites={"s1": {"water_leak": KindRule(critical=True, escalate_to=("family",))}}
    )
    assert policy.rule("water_leak", "s1").critical
    assert not policy.rule("water_leak", "s2").critical
    assert policy.targets("water_leak", "s1") == ("family",)
    assert not policy.dispatches("device_offline", "high", "s1")
    assert not policy.dispatches("routine_drift", "low", "s1")
    assert policy.dispatches("fall", "low", "s1")  # critical kinds always go


def test_alert_closed_releases_offers_cancels_holder_and_closes() -> None:
    state, policy = start()
    state = apply_actions(state, decide(state, Opened(), T0, policy), T0)
    actions = decide(state, AlertClosed(), T0, policy)
    assert actions == [Release(("v1", "v2"), "alert_closed"), Close()]
    state2 = with_status(state, "v1", TaskStatus.EN_ROUTE)
    assert decide(state2, AlertClosed(), T0, policy) == [
        Release(("v2",), "alert_closed"),
        CancelHolder("v1"),
        Close(),
    ]
    closed = apply_actions(state2, [Close()], T0)
    assert decide(closed, Tick(), T0, policy) == [] and next_wakeup(closed, policy) is None


def test_holder_not_on_scene_when_the_circle_is_over_escalates_once() -> None:
    state, policy = start()
    state = apply_actions(state, decide(state, Opened(), T0, policy), T0)
    state = with_status(state, "v1", TaskStatus.EN_ROUTE)
    state = apply_actions(state, decide(state, Accepted("v1"), T0, policy), T0)
    assert next_wakeup(state, policy) == T0 + timedelta(seconds=900)
    assert decide(state, Tick(), T0 + timedelta(seconds=899), policy) == []
    actions = decide(state, Tick(), T0 + timedelta(seconds=900), policy)
    assert actions == [Escalate("not_on_scene", policy.escalate_to)]
    assert decide(apply_actions(state, actions, T0), Tick(), T0 + timedelta(hours=1), policy) == []
    arrived = with_status(state, "v1", TaskStatus.ON_SCENE)
    assert decide(arrived, Tick(), T0 + timedelta(hours=1), policy) == []
    assert next_wakeup(arrived, policy) is None


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["tick", "decline", "accept", "close"]),
        st.integers(min_value=0, max_value=7),
        st.integers(min_value=0, max_value=400),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(
    events=EVENTS,
    k=st.integers(min_value=1, max_value=4),
    n=st.integers(min_value=0, max_value=7),
    kind=st.sampled_from(["tachycardia", "fall", "missed_wakeup"]),
)
def test_decide_invariants_under_any_event_sequence(
    events: list[tuple[str, int, int]], k: int, n: int, kind: str
) -> None:
    """Whatever responders do and whenever time ticks: at most one holder, nobody asked
    twice, never more than k live offers, one escalation at most, nothing after closing."""
    clock = ManualClock(T0)
    policy = DispatchPolicy(k=k, offer_timeout_s=60, escalate_after_s=300)
    state, _ = start(kind, [vol(f"v{i}", 100 * (i + 1)) for i in range(n)], policy)
    escalations = 0

    def run(state: DispatchState, event: object) -> DispatchState:
        nonlocal escalations
        actions = decide(state, event, clock.now(), policy)  # type: ignore[arg-type]
        escalations += sum(isinstance(a, Escalate) for a in actions)
        offers = [a.responder_id for a in actions if isinstance(a, Offer)]
        assert len(offers) == len(set(offers)) and not set(offers) & state.asked()
        if state.closed:
            assert actions == []
        return apply_actions(state, actions, clock.now())

    state = run(state, Opened())
    for what, who, wait in events:
        clock.advance(timedelta(seconds=wait))
        rid = f"v{who}"
        task = next((t for t in state.tasks if t.responder_id == rid), None)
        if what == "tick":
            state = run(state, Tick())
        elif what == "close":
            state = run(state, AlertClosed())
        elif task is not None and task.status is TaskStatus.OFFERED and not state.closed:
            if what == "decline":
                state = run(with_status(state, rid, TaskStatus.DECLINED), Declined(rid))
            elif state.holder is None:  # the service refuses a second acceptor
                state = run(with_status(state, rid, TaskStatus.ACCEPTED), Accepted(rid))
                assert state.outstanding() == ()
        holders = [t for t in state.tasks if t.status in (TaskStatus.ACCEPTED, TaskStatus.EN_ROUTE)]
        assert len(holders) <= 1
        assert len(state.outstanding("offer")) <= k
        assert escalations <= 1
        if state.holder is None and not state.closed and n == 0:
            assert state.escalated  # nobody available: escalated at once
