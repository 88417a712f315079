"""The alert engine as ingest's hand-off handler, on the real PostgreSQL.

Envelopes are built with the contract models, stored in ``readings``/``events`` the way
ingest stores them, then handed to ``AlertEngine.on_committed`` (what ingest does after
each commit).  Alert rows, the audit trail and ``cc_alert`` notifications are checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb

from carecircle.common.clock import ManualClock
from carecircle.common.contract import Code, Envelope, Kind, Payload
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts import service
from carecircle.platform.alerts.engine import AlertEngine, FlapPolicy
from carecircle.platform.alerts.lifecycle import Outcome, Status
from tests.platform.seed import household as seed_household

TZ = ZoneInfo("Asia/Shanghai")
Conn = psycopg.Connection[tuple[object, ...]]


@dataclass
class World:
    p: str
    site: str
    res: str
    gw: str

    def dev(self, name: str) -> str:
        return f"{self.p}-{name}"

    def room(self, name: str) -> str:
        return f"{self.p}-{name}"


DEVICES = [  # name, type, room, belongs to the resident
    ("band", "wearable", None, True),
    ("sos", "sos_button", "liv", True),
    ("pir-bath", "motion_sensor", "bath", False),
    ("pir-liv", "motion_sensor", "liv", False),
    ("door", "door_sensor", "ent", False),
    ("bedmat", "bed_sensor", "bed", True),
    ("smoke", "smoke_sensor", "kit", False),
    ("gas", "gas_sensor", "kit", False),
    ("co", "co_sensor", "liv", False),
    ("leak", "leak_sensor", "bath", False),
    ("fallradar", "radar", "bath", False),
    ("temp", "climate_sensor", "liv", False),
]


def make_world(db: Conn, **resident: object) -> World:
    p = f"a{uuid.uuid4().hex[:7]}"
    site = seed_household(db, p)
    res = f"{p}-r"
    db.execute(
        "INSERT INTO residents (id, site_id, room_id, display_name, presence, presence_until, "
        "conditions, care_profile) VALUES (%s, %s, %s, 'Elder', %s, %s, %s, %s)",
        (
            res,
            site,
            f"{p}-bed",
            resident.get("presence", "home"),
            resident.get("presence_until"),
            list(resident.get("conditions", [])),  # type: ignore[call-overload]
            Jsonb(resident.get("care_profile", {})),
        ),
    )
    gw = f"{p}-gw"
    db.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (gw, site))
    for name, typ, room, own in DEVICES:
        family = (
            "wearable"
            if typ == "wearable"
            else ("bed_sensor" if typ == "bed_sensor" else "zigbee2mqtt")
        )
        db.execute(
            "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
            "native_id, type) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                f"{p}-{name}",
                gw,
                site,
                f"{p}-{room}" if room else None,
                res if own else None,
                family,
                name,
                typ,
            ),
        )
    return World(p, site, res, gw)


ROOM_OF = {name: room for name, _, room, _ in DEVICES}
OWN = {name for name, _, _, own in DEVICES if own}


def envelope(
    w: World, device: str, code: Code, value: float | None, at: datetime, kind: Kind | None = None
) -> Envelope:
    room = ROOM_OF[device]
    k = kind or (Kind.EVENT if code in (Code.SOS, Code.FALL, Code.BUTTON) else Kind.READING)
    if code in (Code.AVAILABILITY, Code.BATTERY):
        k = Kind.STATUS
    return Envelope(
        id=uuid.uuid4(),
        kind=k,
        gw=w.gw,
        dev=w.dev(device),
        res=w.res if device in OWN else None,
        site=w.site,
        room=w.room(room) if room else None,
        ts=at,
        gw_ts=at,
        payload=Payload(code=code, value=value),
    )


def store_items(db: Conn, items: list[Envelope]) -> None:
    """Store envelopes as ingest does (readings vs events), committed."""
    for e in items:
        if e.kind is Kind.READING:
            db.execute(
                "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, "
                "resident_id, site_id, code, value) VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s)",
                (e.ts, e.id, e.gw, e.dev, e.res, e.site, e.payload.code.value, e.payload.value),
            )
        else:
            db.execute(
                "INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, "
                "resident_id, site_id, kind, code, value, attrs) "
                "VALUES (%s, now(), %s, %s, %s, %s, %s, %s, %s, %s, '{}')",
                (
                    e.ts,
                    e.id,
                    e.gw,
                    e.dev,
                    e.res,
                    e.site,
                    e.kind.value,
                    e.payload.code.value,
                    e.payload.value,
                ),
            )


T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai, November


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def engine(database_url: str, clock: ManualClock) -> Iterator[AlertEngine]:
    eng = AlertEngine(
        connect=lambda: psycopg.connect(database_url, autocommit=True),
        tz=TZ,
        clock=clock,
        cache_ttl_s=0.0,
    )
    yield eng
    eng.close()


def hand_off(db: Conn, eng: AlertEngine, items: list[Envelope]) -> None:
    store_items(db, items)
    eng.on_committed(items)


def alerts_of(db: Conn, site: str) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT kind, subject, status, severity, occurrences, resident_id, device_id "
        "FROM alerts WHERE site_id = %s ORDER BY id",
        (site,),
    ).fetchall()


@pytest.mark.parametrize(
    ("device", "code", "kind", "severity"),
    [
        ("sos", Code.SOS, "sos", "critical"),
        ("band", Code.FALL, "fall", "critical"),
        ("fallradar", Code.FALL, "fall", "critical"),
        ("smoke", Code.SMOKE, "smoke", "critical"),
        ("gas", Code.GAS, "gas", "critical"),
        ("co", Code.CARBON_MONOXIDE, "carbon_monoxide", "critical"),
        ("leak", Code.WATER_LEAK, "water_leak", "high"),
    ],
)
def test_each_immediate_event_opens_one_alert_and_pushes_it(
    db: Conn,
    engine: AlertEngine,
    database_url: str,
    device: str,
    code: Code,
    kind: str,
    severity: str,
) -> None:
    w = make_world(db)
    first = envelope(w, device, code, 1, T0)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
        hand_off(db, engine, [first])
        notes = [
            repo.parse_notification(n.payload) for n in listener.notifies(timeout=2, stop_after=1)
        ]
    assert notes and notes[0]["kind"] == kind and notes[0]["change"] == "opened"
    assert notes[0]["site_id"] == w.site
    subject = w.res if device in OWN else w.site
    assert alerts_of(db, w.site) == [
        (kind, subject, "open", severity, 1, w.res if device in OWN else None, w.dev(device))
    ]
    # a repeat refreshes the active alert instead of opening another
    hand_off(db, engine, [envelope(w, device, code, 1, T0 + timedelta(seconds=30))])
    assert [(r[0], r[4]) for r in alerts_of(db, w.site)] == [(kind, 2)]
    # a clear (0) raises nothing
    if code not in (Code.SOS,):
        hand_off(db, engine, [envelope(w, device, code, 0, T0 + timedelta(seconds=40))])
        assert [(r[0], r[4]) for r in alerts_of(db, w.site)] == [(kind, 2)]
    assert engine.stats.errors == 0


def test_smoke_reading_and_event_in_one_batch_make_one_alert(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    hand_off(
        db,
        engine,
        [
            envelope(w, "smoke", Code.SMOKE, 1, T0, Kind.READING),
            envelope(w, "smoke", Code.SMOKE, 1, T0, Kind.EVENT),
        ],
    )
    assert [(r[0], r[4]) for r in alerts_of(db, w.site)] == [("smoke", 1)]


def test_tachycardia_duration_across_two_workers(
    db: Conn, engine: AlertEngine, database_url: str, clock: ManualClock
) -> None:
    """Readings split across two ingest workers still satisfy "HR > 120 for 5 minutes"."""
    w = make_world(db)
    service.put_rule(
        db,
        "resident",
        w.res,
        "tachycardia",
        {"threshold": 120, "duration_s": 300, "repetitions": 0},
        actor="staff:s1",
        at=T0,
    )
    other = AlertEngine(
        connect=lambda: psycopg.connect(database_url, autocommit=True),
        tz=TZ,
        clock=clock,
        cache_ttl_s=0.0,
    )
    try:
        workers = [engine, other]
        hand_off(db, engine, [envelope(w, "band", Code.HEART_RATE, 80, T0 - timedelta(minutes=1))])
        for minute in range(6):
            at = T0 + timedelta(minutes=minute)
            hand_off(db, workers[minute % 2], [envelope(w, "band", Code.HEART_RATE, 130, at)])
            fired = [r for r in alerts_of(db, w.site) if r[0] == "tachycardia"]
            assert bool(fired) == (minute >= 5), minute
    finally:
        other.close()
    (row,) = db.execute(
        "SELECT opened_at, explanation FROM alerts WHERE site_id = %s", (w.site,)
    ).fetchall()
    assert row[0] == T0 + timedelta(minutes=5)
    assert row[1]["lasted_s"] == 300 and row[1]["since"].startswith("2026-11-29T08:00")
    assert engine.stats.window_queries + other.stats.window_queries == 6


def test_low_spo2_repetitions_and_normal_readings_cost_no_query(
    db: Conn, engine: AlertEngine
) -> None:
    w = make_world(db)
    normal = [envelope(w, "band", Code.SPO2, 97, T0 + timedelta(minutes=i)) for i in range(10)]
    hand_off(db, engine, normal)
    assert engine.stats.window_queries == 0  # nothing crossed a threshold: no store read
    lows = [
        envelope(w, "band", Code.SPO2, v, T0 + timedelta(minutes=10 + 3 * i))
        for i, v in enumerate([87, 95, 86, 96, 88])
    ]
    for e in lows[:4]:
        hand_off(db, engine, [e])
    assert alerts_of(db, w.site) == []  # two lows so far
    hand_off(db, engine, [lows[4]])
    assert [r[0] for r in alerts_of(db, w.site)] == ["low_spo2"]


def test_copd_profile_lowers_the_spo2_threshold(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db, conditions=["copd"])
    hand_off(
        db,
        engine,
        [envelope(w, "band", Code.SPO2, 89, T0 + timedelta(minutes=i)) for i in range(0, 12, 2)],
    )
    assert alerts_of(db, w.site) == []  # 89 % is this resident's normal
    hand_off(
        db,
        engine,
        [
            envelope(w, "band", Code.SPO2, 86, T0 + timedelta(minutes=20 + i))
            for i in range(0, 12, 2)
        ],
    )
    assert [r[0] for r in alerts_of(db, w.site)] == ["low_spo2"]


def test_fever_from_the_bands_wrist_temperature(db: Conn, engine: AlertEngine) -> None:
    """A band sends skin, not body, temperature: fever is a rise from the wearer's level."""
    w = make_world(db)
    usual = [
        envelope(w, "band", Code.SKIN_TEMPERATURE, 32.8, T0 - timedelta(hours=8, minutes=4 * i))
        for i in range(30)
    ]
    hand_off(db, engine, usual)
    hot = [
        envelope(w, "band", Code.SKIN_TEMPERATURE, 34.6, T0 + timedelta(minutes=4 * i))
        for i in range(9)
    ]
    for e in hot[:-2]:
        hand_off(db, engine, [e])
    assert alerts_of(db, w.site) == []  # 24 minutes so far
    hand_off(db, engine, hot[-2:])
    (row,) = alerts_of(db, w.site)
    assert row[0] == "fever" and row[1] == w.res


def test_cold_room_in_winter(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    temps = [
        envelope(w, "temp", Code.ROOM_TEMPERATURE, 6.5, T0 + timedelta(minutes=10 * i))
        for i in range(4)
    ]
    for e in temps[:3]:
        hand_off(db, engine, [e])
    assert alerts_of(db, w.site) == []  # 20 minutes so far
    hand_off(db, engine, [temps[3]])
    (row,) = alerts_of(db, w.site)
    assert row[0] == "cold_room" and row[1] == w.site and row[6] == w.dev("temp")


def test_door_at_night_is_wandering_unless_away(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    night = datetime(2026, 11, 29, 2, 30, tzinfo=TZ)
    hand_off(db, engine, [envelope(w, "door", Code.DOOR, 1, night.replace(hour=15))])
    assert alerts_of(db, w.site) == []
    hand_off(db, engine, [envelope(w, "door", Code.DOOR, 1, night)])
    (row,) = alerts_of(db, w.site)
    assert row[0] == "night_wandering" and row[1] == w.res  # the household's only resident
    away = make_world(db, presence="hospital")
    hand_off(db, engine, [envelope(away, "door", Code.DOOR, 1, night)])
    assert alerts_of(db, away.site) == [] and engine.stats.suppressed == 1


def test_availability_offline_is_left_to_the_device_check(db: Conn, engine: AlertEngine) -> None:
    """A reported offline is judged by the scheduled check after min_offline_s (links drop
    for minutes; a band is out of range whenever its wearer is out)."""
    w = make_world(db)
    hand_off(db, engine, [envelope(w, "pir-bath", Code.AVAILABILITY, 0, T0)])
    assert alerts_of(db, w.site) == []


def test_site_rule_can_disable_a_kind(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    service.put_rule(db, "site", w.site, "water_leak", {}, enabled=False, actor="admin", at=T0)
    hand_off(db, engine, [envelope(w, "leak", Code.WATER_LEAK, 1, T0)])
    assert alerts_of(db, w.site) == []


def test_flapping_is_damped_but_critical_alerts_never_are(
    db: Conn, database_url: str, clock: ManualClock
) -> None:
    w = make_world(db)
    eng = AlertEngine(
        connect=lambda: psycopg.connect(database_url, autocommit=True),
        tz=TZ,
        clock=clock,
        cache_ttl_s=0.0,
        flap=FlapPolicy(count=3, window_s=3600),
    )
    try:
        for kind_dev, code in (("leak", Code.WATER_LEAK), ("smoke", Code.SMOKE)):
            for i in range(4):
                at = clock.advance(timedelta(minutes=5))
                hand_off(db, eng, [envelope(w, kind_dev, code, 1, at)])
                (aid,) = db.execute(
                    "SELECT id FROM alerts WHERE site_id = %s AND kind = %s AND status = 'open'",
                    (w.site, code.value),
                ).fetchone() or (None,)
                if aid is None:
                    assert kind_dev == "leak" and i == 3
                    break
                service.cancel(db, int(str(aid)), actor="staff:s1", at=at, note="sensor flapping")
        kinds = [r[0] for r in alerts_of(db, w.site)]
        assert kinds.count("water_leak") == 3 and kinds.count("smoke") == 4
        assert eng.stats.damped == 1
    finally:
        eng.close()


def test_snoozed_alert_refires_after_the_snooze(
    db: Conn, engine: AlertEngine, database_url: str
) -> None:
    w = make_world(db)
    hand_off(db, engine, [envelope(w, "leak", Code.WATER_LEAK, 1, T0)])
    (aid,) = db.execute("SELECT id FROM alerts WHERE site_id = %s", (w.site,)).fetchone() or ()
    alert_id = int(str(aid))
    service.snooze(db, alert_id, T0 + timedelta(minutes=10), actor="staff:s1", at=T0)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
        hand_off(db, engine, [envelope(w, "leak", Code.WATER_LEAK, 1, T0 + timedelta(minutes=5))])
        assert repo.get(db, alert_id)["snoozed_until"] == T0 + timedelta(minutes=10)
        hand_off(db, engine, [envelope(w, "leak", Code.WATER_LEAK, 1, T0 + timedelta(minutes=11))])
        changes = [
            repo.parse_notification(n.payload)["change"]
            for n in listener.notifies(timeout=2, stop_after=2)
        ]
    assert changes == ["refreshed", "refired"]
    row = repo.get(db, alert_id)
    assert row["snoozed_until"] is None and row["occurrences"] == 3
    service.resolve(
        db, alert_id, Outcome.REAL_INCIDENT, actor="staff:s1", at=T0 + timedelta(minutes=20)
    )
    assert repo.get(db, alert_id)["status"] == Status.RESOLVED


def test_engine_never_raises(clock: ManualClock) -> None:
    def broken() -> psycopg.Connection[tuple[object, ...]]:
        raise psycopg.OperationalError("database is down")

    eng = AlertEngine(connect=broken, tz=TZ, clock=clock)
    w = World("x", "hh-x", "r-x", "gw-x")
    eng.on_committed([envelope(w, "sos", Code.SOS, 1, T0)])
    eng.on_committed([envelope(w, "sos", Code.SOS, 1, T0)])
    assert eng.stats.errors == 2


def test_activity_state_is_order_independent(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    t = [T0 + timedelta(minutes=m) for m in range(4)]
    # bed: in at t0, out at t2 (delivered late, after a newer "out" reading at t3)
    hand_off(db, engine, [envelope(w, "bedmat", Code.BED_OCCUPANCY, 1, t[0])])
    hand_off(db, engine, [envelope(w, "bedmat", Code.BED_OCCUPANCY, 0, t[3])])
    hand_off(db, engine, [envelope(w, "bedmat", Code.BED_OCCUPANCY, 0, t[2])])
    hand_off(
        db,
        engine,
        [
            envelope(w, "pir-liv", Code.MOTION, 1, t[2]),
            envelope(w, "pir-liv", Code.MOTION, 0, t[3]),
            envelope(w, "pir-liv", Code.MOTION, 1, t[1]),
        ],
    )
    rows = dict(
        ((r[0], r[1]), r[2:])
        for r in db.execute(
            "SELECT device_id, code, last_active_at, last_value, last_change_at "
            "FROM activity_state WHERE site_id = %s",
            (w.site,),
        ).fetchall()
    )
    assert rows[(w.dev("bedmat"), "bed_occupancy")] == (None, 0.0, t[3])
    assert rows[(w.dev("pir-liv"), "motion")] == (t[2], 0.0, t[3])


def test_concurrent_activity_upserts_do_not_deadlock(db: Conn, database_url: str) -> None:
    """Ingest workers fold overlapping sensors in different orders at the same time."""
    import random
    import threading

    from carecircle.platform.alerts import store

    w = make_world(db)
    devices = [f"{w.p}-dev{i}" for i in range(40)]
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for n in range(30):
                    batch = [
                        store.ActivityUpdate(
                            d,
                            "motion",
                            w.site,
                            None,
                            None,
                            T0 + timedelta(seconds=n, milliseconds=seed),
                            1.0,
                            True,
                        )
                        for d in rng.sample(devices, 25)
                    ]
                    store.upsert_activity(conn, batch)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    (count,) = (
        db.execute("SELECT count(*) FROM activity_state WHERE site_id = %s", (w.site,)).fetchone()
        or ()
    )
    assert count == 40


def test_sos_from_an_unprovisioned_resident_still_raises(db: Conn, engine: AlertEngine) -> None:
    w = make_world(db)
    e = envelope(w, "sos", Code.SOS, 1, T0)
    stranger = e.model_copy(update={"res": f"{w.p}-nobody"})
    hand_off(db, engine, [stranger])
    (row,) = db.execute(
        "SELECT kind, subject, resident_id, explanation FROM alerts WHERE site_id = %s", (w.site,)
    ).fetchall()
    assert row[:3] == ("sos", f"{w.p}-nobody", None)
    assert row[3]["unknown_resident"] == f"{w.p}-nobody" and engine.stats.errors == 0


def test_build_engine_from_settings(db: Conn, database_url: str) -> None:
    from carecircle.platform.alerts.engine import build_engine
    from carecircle.platform.settings import PlatformSettings

    w = make_world(db)
    eng = build_engine(PlatformSettings(database_url=database_url, alerts_timezone="Asia/Urumqi"))
    try:
        assert str(eng.tz) == "Asia/Urumqi" and eng.cache_ttl_s == 30
        hand_off(db, eng, [envelope(w, "gas", Code.GAS, 1, T0)])
    finally:
        eng.close()
    assert [r[0] for r in alerts_of(db, w.site)] == ["gas"]


def test_the_bands_worn_flag_is_kept_with_since_when(db: Conn, engine: AlertEngine) -> None:
    """The band's battery status says whether it is on the wrist; ``activity_state``
    keeps the flag (code ``worn``) and since when, for the absence checks."""
    w = make_world(db)
    t = [T0 + timedelta(minutes=2 * m) for m in range(6)]

    def status(at: datetime, worn: bool | None) -> Envelope:
        e = envelope(w, "band", Code.BATTERY, 80, at)
        attrs = {} if worn is None else {"worn": worn}
        return e.model_copy(update={"payload": Payload(code=Code.BATTERY, value=80, attrs=attrs)})

    def row() -> tuple[object, ...] | None:
        return db.execute(
            "SELECT last_value, last_change_at, last_value_at, last_active_at FROM activity_state "
            "WHERE device_id = %s AND code = 'worn'",
            (w.dev("band"),),
        ).fetchone()

    hand_off(db, engine, [status(t[0], None)])
    assert row() is None  # a band that does not say
    hand_off(db, engine, [status(t[0], True), status(t[1], True)])
    hand_off(db, engine, [status(t[2], False), status(t[3], False)])
    assert row() == (0.0, t[2], t[3], None)  # off since t2
    hand_off(db, engine, [status(t[4], True)])
    hand_off(db, engine, [status(t[1], True)])  # a late report changes nothing
    assert row() == (1.0, t[4], t[4], None)  # back on at t4
