"""Scheduled absence checks with a moved clock, on the real PostgreSQL.

Activity reaches ``activity_state`` the way the engine folds it on ingest's hand-off;
devices and gateways carry ``last_seen``/``status``/``battery`` as ingest keeps them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts import service, store
from carecircle.platform.alerts.config import MissedWakeupRule
from carecircle.platform.alerts.jobs import (
    CheckReport,
    WakeupCache,
    WakeWant,
    episode_action,
    register_jobs,
    run_absence_checks,
)
from carecircle.platform.alerts.lifecycle import Outcome
from carecircle.platform.settings import PlatformSettings
from tests.platform.seed import household as seed_household

TZ = ZoneInfo("Asia/Shanghai")
Conn = psycopg.Connection[tuple[object, ...]]


@dataclass
class Home:
    p: str
    site: str
    res: str
    gw: str


def make_home(db: Conn, presence: str = "home", presence_until: datetime | None = None) -> Home:
    p = f"j{uuid.uuid4().hex[:7]}"
    site = seed_household(db, p)
    res = f"{p}-r"
    db.execute(
        "INSERT INTO residents (id, site_id, display_name, presence, presence_until) "
        "VALUES (%s, %s, 'Elder', %s, %s)",
        (res, site, presence, presence_until),
    )
    gw = f"{p}-gw"
    db.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (gw, site))
    for name, room, timeout, power in (
        ("pir-bath", "bath", 600, "battery"),
        ("pir-liv", "liv", 3600, "battery"),
        ("pir-kit", "kit", 3600, "battery"),
        ("pir-bed", "bed", 3600, "battery"),
        ("bedmat", "bed", 300, "mains"),
    ):
        db.execute(
            "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family, "
            "native_id, type, offline_timeout_s, power) "
            "VALUES (%s, %s, %s, %s, %s, 'zigbee2mqtt', %s, 'sensor', %s, %s)",
            (
                f"{p}-{name}",
                gw,
                site,
                f"{p}-{room}",
                res if name == "bedmat" else None,
                name,
                timeout,
                power,
            ),
        )
    return Home(p, site, res, gw)


def activity(db: Conn, h: Home, device: str, code: str, value: float, at: datetime) -> None:
    room = {
        "pir-bath": "bath",
        "pir-liv": "liv",
        "pir-kit": "kit",
        "pir-bed": "bed",
        "bedmat": "bed",
    }[device]
    store.upsert_activity(
        db,
        [
            store.ActivityUpdate(
                f"{h.p}-{device}",
                code,
                h.site,
                h.res if device == "bedmat" else None,
                f"{h.p}-{room}",
                at,
                value,
                code != "bed_occupancy" and value > 0,
            )
        ],
    )


def check(db: Conn, h: Home, now: datetime, *, fresh: bool = True) -> CheckReport:
    """Run the checks at ``now``; ``fresh`` marks every device and the gateway seen just now."""
    if fresh:
        all_devices_seen(db, h, now)
    return run_absence_checks(db, now, TZ, site_ids=[h.site])


def alerts(db: Conn, h: Home) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT kind, subject, status FROM alerts WHERE site_id = %s ORDER BY id", (h.site,)
    ).fetchall()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def all_devices_seen(db: Conn, h: Home, when: datetime) -> None:
    db.execute(
        "UPDATE devices SET last_seen = %s, status = 'online' WHERE site_id = %s", (when, h.site)
    )
    db.execute("UPDATE gateways SET last_seen = %s, status = 'online' WHERE id = %s", (when, h.gw))


def test_prolonged_inactivity_in_the_bathroom_one_alert_per_episode(
    db: Conn, database_url: str
) -> None:
    h = make_home(db)
    activity(db, h, "pir-liv", "motion", 1, at(29, 9, 30))
    activity(db, h, "pir-bath", "motion", 1, at(29, 10, 0))
    all_devices_seen(db, h, at(29, 11, 0))
    assert check(db, h, at(29, 10, 59)).opened == []
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
        report = check(db, h, at(29, 11, 1))
        assert report.opened == [("prolonged_inactivity", h.res)]
        again = check(db, h, at(29, 11, 2))  # still true: quiet refresh, no second alert
        assert again.refreshed == 1 and again.opened == []
        notes = [
            repo.parse_notification(n.payload)["change"] for n in listener.notifies(timeout=0.5)
        ]
    assert notes == ["opened"]
    (aid,) = db.execute("SELECT id FROM alerts WHERE site_id = %s", (h.site,)).fetchone() or ()
    service.resolve(db, int(str(aid)), Outcome.RESIDENT_FINE, actor="staff:s1", at=at(29, 11, 5))
    # the same silence does not raise a new alert after staff resolved it
    assert check(db, h, at(29, 11, 10)).already_handled == 1
    assert [r[0] for r in alerts(db, h)] == ["prolonged_inactivity"]
    # new activity, then a new long silence in the bathroom: a new episode, a new alert
    activity(db, h, "pir-bath", "motion", 1, at(29, 11, 30))
    assert check(db, h, at(29, 12, 0)).opened == []
    assert check(db, h, at(29, 12, 31)).opened == [("prolonged_inactivity", h.res)]


def test_a_night_in_the_bedroom_is_not_inactivity(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "pir-bed", "motion", 1, at(28, 22, 0))
    all_devices_seen(db, h, at(29, 6, 55))
    assert check(db, h, at(29, 7, 0)).opened == []
    # 12 h in the bedroom is too long even at night (and nobody got up this morning)
    assert sorted(check(db, h, at(29, 10, 5)).opened) == [
        ("missed_wakeup", h.res),
        ("prolonged_inactivity", h.res),
    ]


def test_missed_wakeup(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "pir-kit", "motion", 1, at(28, 20, 0))
    activity(db, h, "bedmat", "bed_occupancy", 1, at(28, 21, 30))
    activity(db, h, "pir-bed", "motion", 1, at(29, 7, 10))  # turning in bed: not waking
    all_devices_seen(db, h, at(29, 9, 30))
    assert check(db, h, at(29, 9, 29)).opened == []
    assert check(db, h, at(29, 9, 31)).opened == [("missed_wakeup", h.res)]
    # a resident who got up on time raises nothing
    up = make_home(db)
    activity(db, up, "pir-kit", "motion", 1, at(28, 20, 0))
    activity(db, up, "pir-bath", "motion", 1, at(29, 6, 40))
    activity(db, up, "pir-liv", "motion", 1, at(29, 9, 0))
    all_devices_seen(db, up, at(29, 9, 30))
    assert check(db, up, at(29, 9, 31)).opened == []


def test_bed_exit_not_returned(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "bedmat", "bed_occupancy", 1, at(28, 22, 30))
    activity(db, h, "bedmat", "bed_occupancy", 0, at(29, 2, 0))
    activity(db, h, "pir-bath", "motion", 1, at(29, 2, 5))
    all_devices_seen(db, h, at(29, 2, 45))
    assert check(db, h, at(29, 2, 44)).opened == []
    assert ("bed_exit_not_returned", h.res) in check(db, h, at(29, 2, 46)).opened


def test_away_resident_is_not_checked_until_back(db: Conn) -> None:
    h = make_home(db, presence="day_care", presence_until=at(29, 17, 0))
    activity(db, h, "pir-liv", "motion", 1, at(29, 8, 0))
    all_devices_seen(db, h, at(29, 16, 0))
    report = check(db, h, at(29, 16, 0))
    assert report.suppressed == 1 and report.opened == []
    assert check(db, h, at(29, 17, 1)).opened == [("prolonged_inactivity", h.res)]


def test_device_offline_per_device_timeout_and_delayed_clear(db: Conn) -> None:
    h = make_home(db)
    # this site calls a device offline after its own timeout (no 1 h floor)
    service.put_rule(
        db, "site", h.site, "device_offline", {"min_offline_s": 0}, actor="admin", at=at(29, 11)
    )
    activity(db, h, "pir-liv", "motion", 1, at(29, 11, 55))
    all_devices_seen(db, h, at(29, 11, 59))
    # the bathroom PIR (timeout 10 min) went silent at 11:49; the others are fine
    db.execute(
        "UPDATE devices SET last_seen = %s WHERE id = %s", (at(29, 11, 49), f"{h.p}-pir-bath")
    )
    db.execute(
        "UPDATE devices SET last_seen = %s WHERE id = %s", (at(29, 11, 30), f"{h.p}-pir-kit")
    )
    report = check(db, h, at(29, 12, 0), fresh=False)
    assert report.opened == [("device_offline", f"{h.p}-pir-bath")]
    # back online at 12:05: cleared only once quiet for clear_after_s (600 s)
    db.execute(
        "UPDATE devices SET last_seen = %s WHERE id = %s", (at(29, 12, 5), f"{h.p}-pir-bath")
    )
    assert check(db, h, at(29, 12, 6), fresh=False).cleared == []
    all_devices_seen(db, h, at(29, 12, 10))
    assert check(db, h, at(29, 12, 10), fresh=False).cleared == [
        ("device_offline", f"{h.p}-pir-bath")
    ]
    (status, actor) = (
        db.execute(
            "SELECT a.status, t.actor FROM alerts a JOIN alert_transitions t ON t.alert_id = a.id "
            "WHERE a.site_id = %s AND t.to_status = 'resolved'",
            (h.site,),
        ).fetchone()
        or ()
    )
    assert status == "resolved" and actor == "system:alerts"


def test_gateway_offline_covers_its_devices(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "pir-liv", "motion", 1, at(29, 11, 55))
    all_devices_seen(db, h, at(29, 11, 30))
    report = check(db, h, at(29, 12, 0), fresh=False)
    assert report.opened == [("gateway_offline", h.gw)]  # not one per device behind it


def test_low_battery_opens_and_clears(db: Conn) -> None:
    h = make_home(db)
    activity(db, h, "pir-liv", "motion", 1, at(29, 11, 55))
    all_devices_seen(db, h, at(29, 11, 59))
    db.execute("UPDATE devices SET battery = 9 WHERE id = %s", (f"{h.p}-pir-kit",))
    assert check(db, h, at(29, 12, 0), fresh=False).opened == [("low_battery", f"{h.p}-pir-kit")]
    db.execute("UPDATE devices SET battery = 20 WHERE id = %s", (f"{h.p}-pir-kit",))
    assert check(db, h, at(29, 12, 1), fresh=False).cleared == []  # hysteresis: not yet 25 %
    db.execute("UPDATE devices SET battery = 100 WHERE id = %s", (f"{h.p}-pir-kit",))
    assert check(db, h, at(29, 12, 2), fresh=False).cleared == [("low_battery", f"{h.p}-pir-kit")]


def test_register_jobs_adds_one_interval_job(database_url: str) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC")
    settings = PlatformSettings(database_url=database_url, alerts_absence_interval_s=30)
    register_jobs(scheduler, settings, lambda: psycopg.connect(database_url, autocommit=True))
    (job,) = scheduler.get_jobs()
    assert job.id == "alerts.absence_checks" and job.trigger.interval == timedelta(seconds=30)
    report = job.func()  # the job runs end to end against the database
    assert isinstance(report, CheckReport) and report.residents >= 0


def test_timezone_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        PlatformSettings(alerts_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        PlatformSettings(timezone="Mars/Olympus")


def test_one_platform_timezone_with_the_old_names_as_aliases() -> None:
    assert PlatformSettings().timezone == "Asia/Shanghai"
    s = PlatformSettings(timezone="Asia/Urumqi")
    assert s.alerts_timezone == s.dispatch_timezone == s.display_timezone == "Asia/Urumqi"
    assert s.ml_timezone == "Asia/Urumqi"
    assert PlatformSettings(ml_timezone="Asia/Urumqi").timezone == "Asia/Urumqi"
    with pytest.raises(ValueError, match="one time zone"):
        PlatformSettings(alerts_timezone="Asia/Urumqi", display_timezone="UTC")
    with pytest.raises(ValueError, match="one time zone"):
        PlatformSettings(timezone="UTC", dispatch_timezone="Asia/Urumqi")


def test_nursing_home_room_sensors_belong_to_their_residents(db: Conn) -> None:
    h = make_home(db)  # reuse the places; add a second resident in their own room
    db.execute(
        "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, 'bedroom', 'b2')",
        (f"{h.p}-bed2", h.site),
    )
    db.execute("UPDATE residents SET room_id = %s WHERE id = %s", (f"{h.p}-bed", h.res))
    other = f"{h.p}-r2"
    db.execute(
        "INSERT INTO residents (id, site_id, room_id, display_name) VALUES (%s, %s, %s, 'Other')",
        (other, h.site, f"{h.p}-bed2"),
    )
    db.execute(
        "INSERT INTO devices (id, gateway_id, site_id, room_id, family, native_id, type) "
        "VALUES (%s, %s, %s, %s, 'zigbee2mqtt', 'pir-bed2', 'sensor')",
        (f"{h.p}-pir-bed2", h.gw, h.site, f"{h.p}-bed2"),
    )
    # the first resident moves in their room all day; the other's room has been still
    store.upsert_activity(
        db,
        [
            store.ActivityUpdate(
                f"{h.p}-pir-bed2", "motion", h.site, None, f"{h.p}-bed2", at(29, 8, 0), 1, True
            )
        ],
    )
    activity(db, h, "pir-bed", "motion", 1, at(29, 13, 50))
    report = check(db, h, at(29, 14, 0))
    assert report.opened == [("prolonged_inactivity", other)]  # 6 h still in their room


def reading(db: Conn, h: Home, device: str, code: str, value: float, when: datetime) -> None:
    db.execute(
        "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, code, value) VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s)",
        (when, when, uuid.uuid4(), h.gw, f"{h.p}-{device}", h.site, code, value),
    )


def motion(db: Conn, h: Home, device: str, *when: datetime) -> None:
    """Motion at each of ``when``: stored as ingest stores it and folded into
    ``activity_state`` as the engine does."""
    for t in when:
        reading(db, h, device, "motion", 1, t)
        activity(db, h, device, "motion", 1, t)


def wakeups(db: Conn, h: Home) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT explanation->>'window_source', explanation->'window' FROM alerts "
        "WHERE site_id = %s AND kind = 'missed_wakeup' ORDER BY id",
        (h.site,),
    ).fetchall()


def to_bed(db: Conn, h: Home) -> None:
    """In bed since 21:30 on the 19th, not up since."""
    activity(db, h, "pir-kit", "motion", 1, at(19, 20, 0))
    activity(db, h, "bedmat", "bed_occupancy", 1, at(19, 21, 30))


def test_missed_wakeup_window_learned_from_the_residents_mornings(db: Conn) -> None:
    h = make_home(db)
    for day in (16, 17, 18, 19):  # up at 06:00: bathroom, then kitchen and living room
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv", "pir-liv"]):
            reading(db, h, dev, "motion", 1, at(day, 6, 1 + 12 * i))
    to_bed(db, h)
    # usual rise 06:01: window 05:31-07:31 instead of 06:00-09:30
    assert [k for k, _ in check(db, h, at(20, 7, 25)).opened] == []
    report = check(db, h, at(20, 7, 35))
    assert ("missed_wakeup", h.res) in report.opened
    ((source, window),) = wakeups(db, h)
    assert source == "learned"
    assert window == [at(20, 5, 31).isoformat(), at(20, 7, 31).isoformat()]


def test_missed_wakeup_a_toilet_trip_in_the_window_is_not_up(db: Conn) -> None:
    h = make_home(db)
    for day in (16, 17, 18, 19):  # usual rise 06:01: window 05:31-07:31
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv", "pir-liv"]):
            reading(db, h, dev, "motion", 1, at(day, 6, 1 + 12 * i))
    to_bed(db, h)
    for dev, code, value, when in [
        ("bedmat", "bed_occupancy", 1, at(20, 5, 0)),
        ("bedmat", "bed_occupancy", 0, at(20, 6, 10)),
        ("pir-bath", "motion", 1, at(20, 6, 12)),
        ("bedmat", "bed_occupancy", 1, at(20, 6, 17)),
    ]:
        reading(db, h, dev, code, value, when)
        activity(db, h, dev, code, value, when)
    assert ("missed_wakeup", h.res) in check(db, h, at(20, 7, 35)).opened
    up = make_home(db)  # the same, then up at 06:30 for good
    for day in (16, 17, 18, 19):
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv", "pir-liv"]):
            reading(db, up, dev, "motion", 1, at(day, 6, 1 + 12 * i))
    to_bed(db, up)
    for i, dev in enumerate(["pir-bath", "pir-kit", "pir-liv", "pir-kit"]):
        reading(db, up, dev, "motion", 1, at(20, 6, 30 + 8 * i))
        activity(db, up, dev, "motion", 1, at(20, 6, 30 + 8 * i))
    assert check(db, up, at(20, 7, 35)).opened == []


def test_missed_wakeup_without_history_or_with_a_window_set_keeps_it(db: Conn) -> None:
    fresh = make_home(db)  # no mornings stored: the rule's 06:00-09:30
    to_bed(db, fresh)
    assert check(db, fresh, at(20, 7, 35)).opened == []
    assert ("missed_wakeup", fresh.res) in check(db, fresh, at(20, 9, 35)).opened
    assert wakeups(db, fresh)[0][0] == "rule"
    # a window set in the care profile wins over the learned one
    h = make_home(db)
    db.execute(
        "UPDATE residents SET care_profile = %s WHERE id = %s",
        ('{"missed_wakeup": {"start": "06:00", "end": "09:00"}}', h.res),
    )
    for day in (16, 17, 18, 19):
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv"]):
            reading(db, h, dev, "motion", 1, at(day, 6, 1 + 12 * i))
    to_bed(db, h)
    assert check(db, h, at(20, 7, 35)).opened == []
    assert ("missed_wakeup", h.res) in check(db, h, at(20, 9, 5)).opened
    assert wakeups(db, h)[0][0] == "resident"


def add_band(db: Conn, h: Home) -> str:
    band = f"{h.p}-band"
    db.execute(
        "INSERT INTO devices (id, gateway_id, site_id, resident_id, family, native_id, type, "
        "offline_timeout_s, power) VALUES (%s, %s, %s, %s, 'wearable', %s, 'wearable', 1800, "
        "'battery')",
        (band, h.gw, h.site, h.res, band),
    )
    return band


def band_event(
    db: Conn, h: Home, band: str, code: str, when: datetime, value: float, attrs: str
) -> None:
    db.execute(
        "INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, kind, code, value, attrs) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            when,
            when,
            uuid.uuid4(),
            h.gw,
            band,
            h.res,
            h.site,
            "event" if code == "fall" else "status",
            code,
            value,
            attrs,
        ),
    )


def test_low_confidence_fall_raised_only_if_the_band_is_still_worn(db: Conn) -> None:
    t0 = at(20, 10, 0)
    dropped, worn, silent = make_home(db), make_home(db), make_home(db)
    for h, report in ((dropped, "false"), (worn, "true"), (silent, None)):
        band = add_band(db, h)
        activity(db, h, "pir-liv", "motion", 1, t0)
        band_event(db, h, band, "fall", t0, 1, '{"source": "careband", "confidence": 0.42}')
        if report is not None:
            band_event(
                db, h, band, "battery", t0 + timedelta(seconds=90), 80, f'{{"worn": {report}}}'
            )
    falls = "SELECT count(*) FROM alerts WHERE subject = %s AND kind = 'fall'"
    r1 = run_absence_checks(db, t0 + timedelta(minutes=2), TZ)
    assert r1.falls_dropped >= 1 and ("fall", worn.res) in r1.opened
    assert ("fall", silent.res) not in r1.opened  # still waiting for the band's next report
    r2 = run_absence_checks(db, t0 + timedelta(minutes=11), TZ)
    assert ("fall", silent.res) in r2.opened  # a silent band is no reason to stay quiet
    assert ("fall", worn.res) not in r2.opened  # raised once
    counts = [db.execute(falls, (h.res,)).fetchone() for h in (dropped, worn, silent)]
    assert counts == [(0,), (1,), (1,)]


def test_band_offline_only_with_someone_at_home(db: Conn) -> None:
    now = at(20, 12, 0)
    out, home = make_home(db), make_home(db)
    for h in (out, home):
        band = add_band(db, h)
        db.execute(
            "UPDATE devices SET type = 'motion_sensor' "
            "WHERE site_id = %s AND native_id LIKE 'pir-%%'",
            (h.site,),
        )
        all_devices_seen(db, h, now)
        db.execute(
            "UPDATE devices SET last_seen = %s WHERE id = %s", (now - timedelta(hours=26), band)
        )
        reading(db, h, "pir-liv", "motion", 1, now - timedelta(hours=10))  # a ghost trigger
    for minutes in range(0, 600, 60):  # someone moving about, all day
        reading(db, home, "pir-kit", "motion", 1, now - timedelta(minutes=minutes))
    report = run_absence_checks(db, now, TZ, site_ids=[out.site, home.site])
    offline = [s for k, s in report.opened if k == "device_offline"]
    assert offline == [f"{home.p}-band"]
    # a home without motion sensors: the 24 h floor alone decides
    db.execute("UPDATE devices SET type = 'sensor' WHERE site_id = %s", (out.site,))
    report = run_absence_checks(db, now, TZ, site_ids=[out.site])
    assert [s for k, s in report.opened if k == "device_offline"] == [f"{out.p}-band"]


def test_missed_wakeup_stated_time_and_alerted_mornings(db: Conn) -> None:
    """The intake's usual wake-up time is the window of a fresh resident; mornings that
    raised a missed wake-up are then left out of what is learned."""
    h = make_home(db)
    db.execute(
        "UPDATE residents SET care_profile = %s WHERE id = %s",
        ('{"usual_wake_time": "06:30"}', h.res),
    )
    to_bed(db, h)
    assert check(db, h, at(20, 8, 25)).opened == []  # said 06:30: 06:00-08:30
    assert ("missed_wakeup", h.res) in check(db, h, at(20, 8, 35)).opened
    assert wakeups(db, h)[0] == ("stated", [at(20, 6, 0).isoformat(), at(20, 8, 30).isoformat()])

    g = make_home(db)
    db.execute(
        "UPDATE residents SET care_profile = %s WHERE id = %s",
        ('{"usual_wake_time": "06:30"}', g.res),
    )
    for day in (16, 17):  # up at 06:01
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv", "pir-liv"]):
            reading(db, g, dev, "motion", 1, at(day, 6, 1 + 12 * i))
    for day in (18, 19):  # in bed until 10:40: a missed wake-up is raised each morning
        activity(db, g, "pir-kit", "motion", 1, at(day - 1, 20, 0))
        activity(db, g, "bedmat", "bed_occupancy", 1, at(day - 1, 21, 30))
        assert ("missed_wakeup", g.res) in check(db, g, at(day, 8, 35)).opened
        db.execute(
            "UPDATE alerts SET status = 'resolved' WHERE site_id = %s AND status = 'open'",
            (g.site,),
        )
        for i, dev in enumerate(["pir-bath", "pir-kit", "pir-kit", "pir-liv", "pir-liv"]):
            when = at(day, 10, 40) + timedelta(minutes=12 * i)
            reading(db, g, dev, "motion", 1, when)
            activity(db, g, dev, "motion", 1, when)
    want = {g.res: WakeWant(MissedWakeupRule(), False, False, time(6, 30))}
    cache = WakeupCache()
    w = cache.windows(db, want, at(20, 8, 0), TZ)[g.res]
    assert cache.alerted[g.res] == {date(2026, 11, 18), date(2026, 11, 19)}
    assert len(cache.rises[g.res]) == 4  # 06:01, 06:01, 10:40, 10:40 ...
    assert (w.source, w.start, w.end) == ("stated", time(6, 0), time(8, 30))  # ... two used
    unfiltered = WakeupCache(day=at(20, 8, 0).date(), rises=cache.rises)
    assert unfiltered.windows(db, want, at(20, 8, 0), TZ)[g.res].source == "learned"


def front_door(db: Conn, h: Home) -> None:
    db.execute(
        "INSERT INTO devices (id, gateway_id, site_id, room_id, family, native_id, type) "
        "VALUES (%s, %s, %s, %s, 'zigbee2mqtt', 'door-ent', 'sensor')",
        (f"{h.p}-door-ent", h.gw, h.site, f"{h.p}-ent"),
    )


def door(db: Conn, h: Home, value: float, when: datetime) -> None:
    db.execute(
        "INSERT INTO readings (time, received_at, msg_id, gateway_id, device_id, resident_id, "
        "site_id, code, value) VALUES (%s, %s, %s, %s, %s, NULL, %s, 'door', %s)",
        (when, when, uuid.uuid4(), h.gw, f"{h.p}-door-ent", h.site, value),
    )
    upd = store.ActivityUpdate(
        f"{h.p}-door-ent", "door", h.site, None, f"{h.p}-ent", when, value, True
    )
    store.upsert_activity(db, [upd])


def test_missed_wakeup_not_raised_for_a_resident_who_went_out_and_is_not_back(db: Conn) -> None:
    homes = []
    for back in (False, True):
        h = make_home(db)
        front_door(db, h)
        motion(db, h, "pir-kit", at(19, 18, 31))
        motion(db, h, "pir-liv", at(19, 18, 38))
        door(db, h, 1, at(19, 18, 40))  # out of the front door in the evening
        door(db, h, 0, at(19, 18, 41))
        if back:  # home at 21:00, then to bed
            door(db, h, 1, at(19, 21, 0))
            door(db, h, 0, at(19, 21, 1))
            motion(db, h, "pir-bath", at(19, 21, 4))
        # a motion sensor's ghost trigger at night: the last activity is not the door
        motion(db, h, "pir-kit", at(20, 2, 17))
        homes.append(h)
    away, home = homes
    report = check(db, away, at(20, 9, 35))
    assert ("missed_wakeup", away.res) not in report.opened
    assert report.presumed_out == [away.res]
    report = check(db, home, at(20, 9, 35))
    assert ("missed_wakeup", home.res) in report.opened and report.presumed_out == []


def test_a_ghost_trigger_in_a_house_she_has_left_is_not_her_inactivity_counts_from_leaving(
    db: Conn,
) -> None:
    """Living alone, out of the front door at 09:00 (after moving about inside); a
    motion sensor in the empty bathroom triggers on its own at 11:00 and 11:04 (twice:
    a single one is judged a lone trigger before this, see the next test).  The
    bathroom's 1 h limit does not apply (nobody came in): the outing is judged from
    09:00 with the entrance's 8 h.  Without the outing the same triggers are her in the
    bathroom."""
    homes = []
    for went_out in (True, False):
        h = make_home(db)
        front_door(db, h)
        motion(db, h, "pir-kit", at(19, 8, 40))
        motion(db, h, "pir-liv", at(19, 8, 52))
        if went_out:
            door(db, h, 1, at(19, 9, 0))
            door(db, h, 0, at(19, 9, 1))
        motion(db, h, "pir-bath", at(19, 11, 0), at(19, 11, 4))  # the ghost
        homes.append(h)
    out, inside = homes
    report = check(db, out, at(19, 12, 10))
    assert ("prolonged_inactivity", out.res) not in report.opened
    assert report.presumed_out == [out.res]
    report = check(db, inside, at(19, 12, 10))
    assert ("prolonged_inactivity", inside.res) in report.opened
    report = check(db, out, at(19, 17, 5))  # 8 h 5 min since she left
    assert ("prolonged_inactivity", out.res) in report.opened
    row = db.execute(
        "SELECT explanation->>'presumed_out_since', explanation->>'last_room_kind' "
        "FROM alerts WHERE site_id = %s AND kind = 'prolonged_inactivity'",
        (out.site,),
    ).fetchone()
    assert row is not None
    assert datetime.fromisoformat(str(row[0])) == at(19, 9, 0) and row[1] == "entrance"


def test_a_lone_trigger_in_the_empty_bathroom_at_night_is_not_her(db: Conn) -> None:
    """Session 7: living alone, to bed at 22:40 after the evening wash; at 02:05 the
    bathroom's motion sensor triggers with nothing moving before it (a ghost trigger,
    or her cat).  She is judged in bed (the bedroom's night limit), not in the
    bathroom (1 h).  The same trigger two minutes after the bedroom saw her get up is
    her in the bathroom."""
    homes = []
    for got_up in (False, True):
        h = make_home(db)
        steps = [("pir-bath", at(28, 22, 30)), ("pir-bed", at(28, 22, 40))]
        if got_up:
            steps.append(("pir-bed", at(29, 2, 3)))
        steps.append(("pir-bath", at(29, 2, 5)))
        for dev, when in steps:
            motion(db, h, dev, when)
        homes.append(h)
    ghost, trip = homes
    assert ("prolonged_inactivity", ghost.res) not in check(db, ghost, at(29, 3, 10)).opened
    assert ("prolonged_inactivity", trip.res) in check(db, trip, at(29, 3, 10)).opened
    # her silence in bed is still judged, from 22:40 with the bedroom's night limit
    assert ("prolonged_inactivity", ghost.res) in check(db, ghost, at(29, 10, 45)).opened
    row = db.execute(
        "SELECT explanation->>'last_room_kind', explanation->'ignored_trigger'->>'at' "
        "FROM alerts WHERE site_id = %s",
        (ghost.site,),
    ).fetchone()
    assert row is not None and row[0] == "bedroom"
    assert datetime.fromisoformat(str(row[1])) == at(29, 2, 5)


def test_episode_action_refreshes_an_open_alert_and_opens_one_per_episode() -> None:
    """The decision the absence checks and the models' scoring share (pure)."""
    began = datetime(2026, 3, 2, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    later = began + timedelta(hours=2)

    def mark(status: str, opened: datetime) -> store.AlertMark:
        return store.AlertMark(1, status, opened, opened)

    assert episode_action(None, began) == "open"
    assert episode_action(mark("open", began - timedelta(days=1)), began) == "refresh"
    assert episode_action(mark("acknowledged", later), began) == "refresh"
    assert episode_action(mark("resolved", later), began) == "handled"
    assert episode_action(mark("resolved", began), began) == "handled"
    assert episode_action(mark("resolved", began - timedelta(minutes=1)), began) == "open"
