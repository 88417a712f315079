"""Presence sensors report a held state, not motion triggers (issue #6).

A presence sensor or radar re-sends "occupied" while someone is in its room — also
someone lying on the floor after a fall.  Only its changes are activity; a PIR's every
trigger still is.  Pure tests of the semantics, then the engine and the scheduled
checks on the real database with a moved clock (the harness of
``test_alerts_scenarios``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from carecircle.common.clock import ManualClock
from carecircle.common.contract import Code, Envelope, Kind, Payload
from carecircle.platform.alerts import store
from carecircle.platform.alerts.config import InactivityRule, MissedWakeupRule
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.absence import (
    ActivityEntry,
    ActivitySummary,
    evaluate_inactivity,
)
from carecircle.platform.alerts.detectors.wakeup import Mark, activations, presumed_out
from carecircle.platform.alerts.engine import AlertEngine, is_activation
from carecircle.platform.alerts.kinds import is_presence
from tests.platform.test_alerts_scenarios import (
    DAY,
    TZ,
    Conn,
    Home,
    Plan,
    hours,
    live,
    routine,
)

RES = ResidentCtx(id="r1", site_id="hh1")


@pytest.fixture
def engine(database_url: str) -> Iterator[AlertEngine]:
    eng = AlertEngine(
        connect=lambda: psycopg.connect(database_url, autocommit=True),
        tz=TZ,
        clock=ManualClock(DAY),
        cache_ttl_s=0.0,
    )
    yield eng
    eng.close()


def local(h: int, m: int = 0) -> datetime:
    return datetime(2026, 11, 29, h, m, tzinfo=TZ)


def env(code: Code, value: float) -> Envelope:
    at = local(10)
    return Envelope(
        id=uuid.uuid4(),
        kind=Kind.EVENT if code is Code.BUTTON else Kind.READING,
        gw="gw1",
        dev="dev1",
        res=None,
        site="hh1",
        room="hh1-bath",
        ts=at,
        gw_ts=at,
        payload=Payload(code=code, value=value),
    )


# -- pure: what is presence, what is an activation ---------------------------------------


def test_presence_is_bathroom_presence_or_motion_of_a_presence_type() -> None:
    assert is_presence("bathroom_presence", None)
    assert is_presence("bathroom_presence", "motion_sensor")
    assert is_presence("motion", "radar_fall_sensor")
    assert is_presence("motion", "presence_sensor")
    assert not is_presence("motion", "motion_sensor")
    assert not is_presence("motion", None)  # unknown device: a PIR, as before
    assert not is_presence("door", "presence_sensor")


def test_a_presence_reading_is_no_activation_a_pir_trigger_is() -> None:
    assert is_activation(env(Code.MOTION, 1.0))
    assert not is_activation(env(Code.MOTION, 0.0))
    assert not is_activation(env(Code.MOTION, 1.0), presence=True)
    assert not is_activation(env(Code.BATHROOM_PRESENCE, 1.0), presence=True)
    assert is_activation(env(Code.BUTTON, 1.0), presence=True)  # a press is a press


def presence(value: float, change: datetime, reported: datetime) -> ActivityEntry:
    # last_active_at as an older engine left it: every re-sent "occupied" an activation
    return ActivityEntry(
        "radar",
        "bathroom",
        "bathroom_presence",
        reported,
        value,
        change,
        False,
        reported,
        presence=True,
    )


def test_held_presence_counts_from_when_it_began() -> None:
    rule = InactivityRule()
    # in the bathroom since 10:00, "occupied" re-sent every 15 min: silent since 10:00
    held = ActivitySummary(RES, [presence(1, local(10), local(11, 0))])
    assert held.entries[0].activity_time() == local(10)
    assert evaluate_inactivity(held, rule, local(10, 59), TZ) == []
    (f,) = evaluate_inactivity(held, rule, local(11, 1), TZ)
    assert f.episode_start == local(10) and f.draft.explanation["last_room_kind"] == "bathroom"
    # a PIR's re-trigger at 10:45 is someone moving: nothing at 11:01
    pir = ActivityEntry("pir", "bathroom", "motion", local(10, 45), 1, local(10))
    assert evaluate_inactivity(ActivitySummary(RES, [pir]), rule, local(11, 1), TZ) == []


def test_a_presence_sensor_gone_empty_is_someone_leaving_its_room() -> None:
    rule = InactivityRule()
    # out of the bathroom at 10:20: activity then, but not in the bathroom any more, so
    # the default day limit (3 h), not the bathroom's hour
    left = ActivitySummary(RES, [presence(0, local(10, 20), local(11, 30))])
    assert left.entries[0].activity_time() == local(10, 20)
    assert evaluate_inactivity(left, rule, local(12, 0), TZ) == []
    (f,) = evaluate_inactivity(left, rule, local(13, 21), TZ)
    assert f.episode_start == local(10, 20) and f.draft.explanation["last_room_kind"] is None


def mark(at: datetime, value: float, *, presence: bool, room: str = "bathroom") -> Mark:
    return Mark(
        at, "bathroom_presence" if presence else "motion", value, room, "d", False, presence
    )


def test_wake_marks_count_a_change_to_occupied_not_a_re_sent_state() -> None:
    rule = MissedWakeupRule()
    held = [mark(local(6, 10 * i), 1, presence=True) for i in range(6)]
    assert activations(held, rule) == [local(6, 0)]  # the first: nothing says since when
    again = [*held, mark(local(7, 5), 0, presence=True), mark(local(7, 20), 1, presence=True)]
    assert activations(again, rule) == [local(6, 0), local(7, 20)]
    pir = [mark(local(6, 10 * i), 1, presence=False) for i in range(6)]
    assert activations(pir, rule) == [local(6, 10 * i) for i in range(6)]


def test_someone_present_after_the_front_door_did_not_go_out() -> None:
    """``presumed_out`` asks whether anyone is inside, not whether they move: a radar
    holding "occupied" after the door closed is someone at home (perhaps on the floor)."""
    door = [
        Mark(local(8, 0), "door", 1, "entrance", "door", False),
        Mark(local(8, 1), "door", 0, "entrance", "door", False),
    ]
    walk = [mark(local(7, 55), 1, presence=False, room="living_room")]
    assert presumed_out([*walk, *door], local(10, 0)) == local(8, 0)
    inside = [mark(local(7, 58) + timedelta(minutes=15 * i), 1, presence=True) for i in range(8)]
    assert presumed_out([*walk, *door, *inside], local(10, 0)) is None


# -- on the database: the activity state, the engine and the scheduled checks ------------


def test_a_bathroom_visit_inside_one_batch_is_a_change(db: Conn) -> None:
    h = Home(db)
    dev = f"{h.p}-radar"

    def up(*values: tuple[float, datetime]) -> None:
        store.upsert_activity(
            db,
            [
                store.ActivityUpdate(dev, "bathroom_presence", h.site, None, None, t, v, False)
                for v, t in values
            ],
        )

    def state() -> tuple[object, ...]:
        row = db.execute(
            "SELECT last_value, last_change_at FROM activity_state WHERE device_id = %s", (dev,)
        ).fetchone()
        assert row is not None
        return tuple(row)

    up((0.0, local(9)))
    up((0.0, local(9, 15)))  # re-sent: no change
    assert state() == (0.0, local(9))
    # in at 10:00 and out at 10:05, both in one batch that ends on the stored "empty"
    up((1.0, local(10)), (0.0, local(10, 5)), (0.0, local(10, 10)))
    assert state() == (0.0, local(10, 5))
    up((1.0, local(11)), (1.0, local(11, 15)))
    up((1.0, local(11, 30)))
    assert state() == (1.0, local(11))


def test_home_activations_count_a_presence_sensors_changes(db: Conn) -> None:
    h = Home(db)
    db.execute("UPDATE devices SET type = 'motion_sensor' WHERE id = %s", (f"{h.p}-pir-liv",))

    def reading(device: str, code: str, value: float, t: datetime) -> None:
        db.execute(
            "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, site_id, "
            "code, value) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (t, t, uuid.uuid4(), h.gw, f"{h.p}-{device}", h.site, code, value),
        )

    # someone in the bathroom from 10:00, re-sent every 15 min: one activation
    for i in range(8):
        reading("radar", "bathroom_presence", 1.0, local(10) + timedelta(minutes=15 * i))
    count = store.home_activations(db, h.site, local(9), local(12), 5)
    assert count == 1
    # out and in again: a second; and a PIR's every trigger counts
    reading("radar", "bathroom_presence", 0.0, local(12, 5))
    reading("radar", "bathroom_presence", 1.0, local(12, 10))
    for m in range(3):
        reading("pir-liv", "motion", 1.0, local(12, 20 + m))
    assert store.home_activations(db, h.site, local(9), local(13), 10) == 5


def held(device: str, code: Code, start: float, end: float, every_min: float) -> Plan:
    plan: Plan = []
    t = start
    while t < end:
        plan.append((hours(t), device, code, 1.0))
        t += every_min / 60
    return plan


def inactivity(db: Conn, home: Home) -> list[dict[str, object]]:
    return [
        dict(r[0])  # type: ignore[call-overload]
        for r in db.execute(
            "SELECT explanation FROM alerts WHERE site_id = %s AND kind = 'prolonged_inactivity'"
            " ORDER BY opened_at",
            (home.site,),
        ).fetchall()
    ]


def opened(db: Conn, home: Home) -> list[datetime]:
    return [
        r[0]  # type: ignore[misc]
        for r in db.execute(
            "SELECT opened_at FROM alerts WHERE site_id = %s AND kind = 'prolonged_inactivity'"
            " ORDER BY opened_at",
            (home.site,),
        ).fetchall()
    ]


def test_a_fall_the_radar_did_not_see_raises_prolonged_inactivity(
    db: Conn, engine: AlertEngine
) -> None:
    """In the bathroom at 09:58, fallen at 10:00 (no fall_alarm: the radar misses 1 in
    10), lying there until helped up at 12:30; the radar holds "occupied", re-sent every
    15 min.  The bathroom's hour runs from 09:58, when the presence began."""
    home = Home(db)
    plan = routine(5, skip=(hours(9.9), hours(12.5)))
    plan += [(hours(9.95), "pir-bath", Code.MOTION, 1.0)]
    plan += [(hours(9.9), "radar", Code.BATHROOM_PRESENCE, 0.0)]
    plan += held("radar", Code.BATHROOM_PRESENCE, 9.97, 12.5, 15)
    live(db, home, engine, sorted(plan, key=lambda e: e[0]))
    found = inactivity(db, home)
    assert found, "no prolonged_inactivity for a bathroom held occupied for 2.5 h"
    first = found[0]
    assert datetime.fromisoformat(str(first["last_activity"])) == hours(9.97)
    assert first["last_room_kind"] == "bathroom"
    assert first["last_device_id"] == f"{home.p}-radar"
    # the first check after the bathroom's hour (checks every 10 min)
    assert hours(10.97) < opened(db, home)[0] <= hours(10.97) + timedelta(minutes=10)
    assert engine.stats.errors == 0


def test_a_pirs_repeated_triggers_are_still_activity(db: Conn, engine: AlertEngine) -> None:
    """The same morning, but the person is moving in the bathroom: the PIR triggers
    every 5 min while the radar holds "occupied".  No prolonged inactivity."""
    home = Home(db)
    plan = routine(5, skip=(hours(9.9), hours(12.5)))
    plan += held("pir-bath", Code.MOTION, 9.95, 12.5, 5)
    plan += [(hours(9.9), "radar", Code.BATHROOM_PRESENCE, 0.0)]
    plan += held("radar", Code.BATHROOM_PRESENCE, 9.97, 12.5, 15)
    live(db, home, engine, sorted(plan, key=lambda e: e[0]))
    assert inactivity(db, home) == []
    assert engine.stats.errors == 0


def test_a_living_room_presence_sensor_is_told_from_a_pir_by_its_type(
    db: Conn, engine: AlertEngine
) -> None:
    """``motion`` from a ``presence_sensor`` (not in a bathroom) is a state too: held
    "occupied" from 13:00 with nothing else moving, the default day limit (3 h) runs
    from 13:00 (the engine reads the device's type)."""
    home = Home(db)
    plan = routine(6, skip=(hours(12.9), hours(17.5)))
    plan += held("presence-liv", Code.MOTION, 13.0, 17.5, 15)
    live(db, home, engine, sorted(plan, key=lambda e: e[0]))
    found = inactivity(db, home)
    assert found and datetime.fromisoformat(str(found[0]["last_activity"])) == hours(13.0)
    assert found[0]["last_device_id"] == f"{home.p}-presence-liv"
