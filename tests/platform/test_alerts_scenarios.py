"""A simulated day in a household, through the engine (hand-off) and the scheduled
checks with a moved clock, scored by the eval matcher.

The routine (seeded): up at 06:30, bathroom, kitchen and living-room activity, a nap in
the chair after lunch, an outing in the afternoon, bed at 21:30 and a short trip to the
bathroom at 02:00; vitals every 5 minutes, room temperature every 15.  Each variant adds
one incident; a normal day must raise nothing.  (The full simulator → gateway → broker →
ingest pipeline is added by the lead after merging; this drives the alerts part.)
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from carecircle.common.clock import ManualClock
from carecircle.common.contract import Code, Envelope, Kind, Payload
from carecircle.platform.alerts.engine import AlertEngine
from carecircle.platform.alerts.eval.cli import load_alerts
from carecircle.platform.alerts.eval.matcher import Incident, score
from carecircle.platform.alerts.jobs import run_absence_checks

TZ = ZoneInfo("Asia/Shanghai")
Conn = psycopg.Connection[tuple[object, ...]]
DAY = datetime(2026, 11, 24, 6, 0, tzinfo=TZ)  # a Tuesday in winter, 06:00 local
ROOMS = {
    "bed": "bedroom",
    "bath": "bathroom",
    "liv": "living_room",
    "kit": "kitchen",
    "ent": "entrance",
}
DEVICES = {  # device -> (room, code, belongs to the resident)
    "band": (None, None, True),
    "bedmat": ("bed", Code.BED_OCCUPANCY, True),
    "pir-bath": ("bath", Code.MOTION, False),
    "pir-liv": ("liv", Code.MOTION, False),
    "pir-kit": ("kit", Code.MOTION, False),
    "door": ("ent", Code.DOOR, False),
    "radar": ("bath", Code.FALL, False),  # and its occupancy: Code.BATHROOM_PRESENCE
    "presence-liv": ("liv", Code.MOTION, False),
    "temp": ("liv", Code.ROOM_TEMPERATURE, False),
}
#: ``devices.type`` where it matters (the engine tells presence from PIR motion by it).
TYPES = {"radar": "radar_fall_sensor", "presence-liv": "presence_sensor"}


class Home:
    def __init__(self, db: Conn) -> None:
        p = f"d{uuid.uuid4().hex[:7]}"
        self.p, self.site, self.res, self.gw = p, f"{p}-hh", f"{p}-r", f"{p}-gw"
        db.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES "
            f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
            f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
        )
        db.execute(
            "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
            "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
            (self.site, f"{p}vi"),
        )
        for name, kind in ROOMS.items():
            db.execute(
                "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s)",
                (f"{p}-{name}", self.site, kind, name),
            )
        db.execute(
            "INSERT INTO residents (id, site_id, room_id, display_name, lives_alone) "
            "VALUES (%s, %s, %s, 'Elder', true)",
            (self.res, self.site, f"{p}-bed"),
        )
        db.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (self.gw, self.site))
        for name, (room, _, own) in DEVICES.items():
            db.execute(
                "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
                "native_id, type, offline_timeout_s) "
                "VALUES (%s, %s, %s, %s, %s, 'zigbee2mqtt', %s, %s, 3600)",
                (
                    f"{p}-{name}",
                    self.gw,
                    self.site,
                    f"{p}-{room}" if room else None,
                    self.res if own else None,
                    name,
                    TYPES.get(name, "sensor"),
                ),
            )

    def envelope(self, device: str, code: Code, value: float, at: datetime) -> Envelope:
        room, _, own = DEVICES[device]
        kind = Kind.EVENT if code in (Code.FALL, Code.SOS) else Kind.READING
        return Envelope(
            id=uuid.uuid4(),
            kind=kind,
            gw=self.gw,
            dev=f"{self.p}-{device}",
            res=self.res if own else None,
            site=self.site,
            room=f"{self.p}-{room}" if room else None,
            ts=at,
            gw_ts=at,
            payload=Payload(code=code, value=value),
        )


Plan = list[tuple[datetime, str, Code, float]]


def routine(seed: int, *, skip: tuple[datetime, datetime] | None = None) -> Plan:
    """A normal day from 06:00 to 06:00; ``skip`` drops activity in that span."""
    rng = random.Random(seed)
    plan: Plan = []

    def at(h: float) -> datetime:
        return DAY + timedelta(hours=h - 6)

    def moving(start: float, end: float, rooms: list[str]) -> None:
        t = start
        while t < end:
            plan.append((at(t), rng.choice(rooms), Code.MOTION, 1.0))
            t += rng.uniform(10, 25) / 60

    # the evening before: kitchen at 20:00, bed at 21:40; then up at 06:30
    plan += [
        (at(-4.0), "pir-kit", Code.MOTION, 1.0),
        (at(-2.33), "bedmat", Code.BED_OCCUPANCY, 1.0),
    ]
    plan.append((at(6.5), "bedmat", Code.BED_OCCUPANCY, 0.0))
    moving(6.52, 7.0, ["pir-bath"])
    moving(7.0, 12.9, ["pir-kit", "pir-liv", "pir-liv", "pir-bath"])
    # to the chair (past the living-room sensor), nap 13:00-14:30 (no motion), up again
    plan.append((at(12.95), "pir-liv", Code.MOTION, 1.0))
    moving(14.5, 15.0, ["pir-liv", "pir-kit"])
    plan += [
        (at(15.0), "door", Code.DOOR, 1.0),
        (at(15.02), "door", Code.DOOR, 0.0),
        (at(17.0), "door", Code.DOOR, 1.0),
        (at(17.02), "door", Code.DOOR, 0.0),
    ]
    moving(17.05, 21.4, ["pir-kit", "pir-liv", "pir-bath"])
    plan += [
        (at(21.5), "bedmat", Code.BED_OCCUPANCY, 1.0),
        (at(26.0), "bedmat", Code.BED_OCCUPANCY, 0.0),
        (at(26.03), "pir-bath", Code.MOTION, 1.0),
        (at(26.17), "bedmat", Code.BED_OCCUPANCY, 1.0),
    ]
    t = 0.0
    while t < 24:  # vitals (worn all day) and the living-room thermometer
        plan.append((at(6 + t), "band", Code.HEART_RATE, round(rng.gauss(72, 5), 0)))
        if int(t * 60) % 15 == 0:
            plan.append((at(6 + t), "band", Code.SPO2, round(min(99.0, rng.gauss(96, 1)), 0)))
            plan.append((at(6 + t), "temp", Code.ROOM_TEMPERATURE, round(rng.gauss(19, 0.5), 1)))
        t += 5 / 60
    if skip:
        plan = [e for e in plan if not (skip[0] <= e[0] < skip[1]) or e[1] in ("band", "temp")]
    return sorted(plan, key=lambda e: e[0])


def hours(h: float) -> datetime:
    return DAY + timedelta(hours=h - 6)


def live(db: Conn, home: Home, engine: AlertEngine, plan: Plan, step_min: int = 10) -> None:
    """Play the plan: store + hand off what happened, keep devices seen, run the checks."""
    events = iter(plan)
    pending = next(events, None)
    now = DAY
    end = DAY + timedelta(hours=24)
    while now <= end:
        batch: list[Envelope] = []
        while pending is not None and pending[0] <= now:
            t, dev, code, value = pending
            batch.append(home.envelope(dev, code, value, t))
            pending = next(events, None)
        for e in batch:
            table = "readings" if e.kind is Kind.READING else "events"
            extra = "" if table == "readings" else ", kind"
            db.execute(
                f"INSERT INTO {table} (time, received_at, msg_id, gateway_id, device_id, "
                f"resident_id, site_id, code, value{extra}) VALUES (%s, %s, %s, %s, %s, %s, "
                f"%s, %s, %s{', %s' if extra else ''})",
                (
                    e.ts,
                    now,
                    e.id,
                    e.gw,
                    e.dev,
                    e.res,
                    e.site,
                    e.payload.code.value,
                    e.payload.value,
                    *([e.kind.value] if extra else []),
                ),
            )
        if batch:
            engine.on_committed(batch)
        db.execute(
            "UPDATE devices SET last_seen = %s, status = 'online' WHERE site_id = %s",
            (now, home.site),
        )
        db.execute(
            "UPDATE gateways SET last_seen = %s, status = 'online' WHERE id = %s", (now, home.gw)
        )
        run_absence_checks(db, now, TZ, site_ids=[home.site])
        now += timedelta(minutes=step_min)


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


def kinds_raised(db: Conn, home: Home) -> list[str]:
    return [
        str(r[0])
        for r in db.execute(
            "SELECT kind FROM alerts WHERE site_id = %s ORDER BY opened_at", (home.site,)
        ).fetchall()
    ]


def incident(
    home: Home,
    kind: str,
    start: datetime,
    end: datetime,
    benign: bool = False,
    device: str | None = None,
) -> Incident:
    return Incident(
        incident_id=f"{kind}-{start:%H%M}",
        resident_id=home.res,
        site_id=home.site,
        device_id=device,
        kind=kind,
        benign=benign,
        start=start,
        end=end,
    )


def scored(db: Conn, home: Home, truth: list[Incident]) -> dict[str, object]:
    alerts = [a for a in load_alerts(db, DAY, DAY + timedelta(days=1)) if a.site_id == home.site]
    return score(truth, alerts, since=DAY, until=DAY + timedelta(days=1), residents=1).as_dict()


BENIGN = [("nap_in_chair", 13.0, 14.5), ("away_from_home", 15.0, 17.0)]


def test_a_normal_day_raises_nothing(db: Conn, engine: AlertEngine) -> None:
    home = Home(db)
    live(db, home, engine, routine(1))
    assert kinds_raised(db, home) == []
    truth = [incident(home, k, hours(a), hours(b), benign=True) for k, a, b in BENIGN]
    result = scored(db, home, truth)
    assert result["false_alerts"] == 0 and engine.stats.errors == 0


def test_fall_in_the_bathroom(db: Conn, engine: AlertEngine) -> None:
    home = Home(db)
    plan = routine(2, skip=(hours(10.0), hours(12.0)))
    plan += [(hours(9.98), "pir-bath", Code.MOTION, 1.0), (hours(10.0), "radar", Code.FALL, 1.0)]
    live(db, home, engine, sorted(plan, key=lambda e: e[0]))
    raised = kinds_raised(db, home)
    assert raised[:2] == ["fall", "prolonged_inactivity"] and len(raised) == 2
    result = scored(db, home, [incident(home, "fall", hours(10.0), hours(12.0))])
    fall = result["kinds"]["fall"]  # type: ignore[index]
    assert fall["detected"] == 1 and fall["median_delay_s"] == 0
    assert result["false_alerts"] == 0 and result["related_alerts"] == 1


def test_missed_wakeup(db: Conn, engine: AlertEngine) -> None:
    home = Home(db)
    live(db, home, engine, routine(3, skip=(hours(6.0), hours(11.0))))
    assert "missed_wakeup" in kinds_raised(db, home)
    truth = [incident(home, "missed_wakeup", hours(6.0), hours(11.0))]
    result = scored(db, home, truth)
    wake = result["kinds"]["missed_wakeup"]  # type: ignore[index]
    assert wake["detected"] == 1 and result["false_alerts"] == 0


def test_night_wandering_and_bed_exit(db: Conn, engine: AlertEngine) -> None:
    home = Home(db)
    plan = [
        e
        for e in routine(4)
        if not (hours(26.0) < e[0] < hours(27.5) and e[1] in ("bedmat", "pir-bath"))
    ]
    plan += [
        (hours(26.05), "pir-liv", Code.MOTION, 1.0),
        (hours(26.25), "door", Code.DOOR, 1.0),
        (hours(26.3), "pir-liv", Code.MOTION, 1.0),
        (hours(27.5), "bedmat", Code.BED_OCCUPANCY, 1.0),
    ]
    live(db, home, engine, sorted(plan, key=lambda e: e[0]))
    assert sorted(kinds_raised(db, home)) == ["bed_exit_not_returned", "night_wandering"]
    truth = [
        incident(home, "night_wandering", hours(26.25), hours(26.5)),
        incident(home, "bed_exit_not_returned", hours(26.0), hours(27.5)),
    ]
    result = scored(db, home, truth)
    kinds = result["kinds"]  # type: ignore[assignment]
    assert kinds["night_wandering"]["detected"] == 1  # type: ignore[index]
    assert kinds["bed_exit_not_returned"]["detected"] == 1  # type: ignore[index]
    assert result["false_alerts"] == 0
