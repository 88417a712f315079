"""The monitoring-coverage report, pure: each gap the held-out evaluations found, and
the attribution, housemate, health and rule logic it shares with the checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carecircle.device_sim.devices import catalog
from carecircle.platform.alerts.config import RuleBook, RuleRow
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.coverage import (
    KINDS,
    MonitoredDevice,
    MonitoredResident,
    ResidentMonitoring,
    Watch,
    assess_site,
    counts_for,
    summarise,
)
from carecircle.platform.alerts.kinds import AlertKind as K

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
W, P, N, OFF = Watch.WATCHED, Watch.PARTIAL, Watch.NOT_WATCHED, Watch.OFF


def res(rid: str, site: str = "hh-1", room: str | None = None, **ctx: object) -> MonitoredResident:
    return MonitoredResident(ResidentCtx(id=rid, site_id=site, **ctx), room)  # type: ignore[arg-type]


def dev(
    did: str,
    type_: str,
    room_kind: str | None = None,
    *,
    site: str = "hh-1",
    resident: str | None = None,
    room: str | None = None,
    family: str = "zigbee2mqtt",
    status: str = "online",
    last_seen: datetime = NOW - timedelta(minutes=5),
    gateway_down: bool = False,
) -> MonitoredDevice:
    return MonitoredDevice(
        did,
        site,
        type_,
        family,
        resident,
        room if room is not None else (f"{site}-{room_kind}" if room_kind else None),
        room_kind,
        status=status,
        last_seen=last_seen,
        gateway_id="gw-1",
        gateway_down=gateway_down,
    )


def band(
    did: str, resident: str, status: str = "online", last_seen: datetime = NOW
) -> MonitoredDevice:
    return dev(
        did, "wearable", resident=resident, family="wearable", status=status, last_seen=last_seen
    )


def bed(did: str, resident: str | None, site: str = "hh-1") -> MonitoredDevice:
    return dev(did, "bed_sensor", "bedroom", resident=resident, family="bed_sensor", site=site)


#: The usual household of the simulator: PIRs in four rooms, front door, smoke, SOS button.
HOME = [
    dev("pir-liv", "motion_sensor", "living_room"),
    dev("pir-bath", "motion_sensor", "bathroom"),
    dev("pir-bed", "motion_sensor", "bedroom"),
    dev("pir-kit", "motion_sensor", "kitchen"),
    dev("door", "door_sensor", "entrance"),
    dev("smoke", "smoke_detector", "kitchen"),
    dev("sos", "sos_button", "living_room"),
    dev("climate", "temperature_humidity_sensor", "living_room"),
]


def one(results: list[ResidentMonitoring], rid: str) -> ResidentMonitoring:
    return next(r for r in results if r.resident_id == rid)


def detection(r: ResidentMonitoring, kind: K) -> tuple[Watch, str, str | None]:
    d = next(d for d in r.detections if d.kind is kind)
    return d.status, d.why, d.fix


def test_partner_with_a_band_hides_her_inactivity_and_wakeup() -> None:
    """The held-out month's 3 missed inactivities: she has no device of her own, he
    wears a band; the shared PIRs see him, so no rule can see her silence."""
    results = assess_site([res("her"), res("him")], [*HOME, band("band-him", "him")], NOW)
    her, him = one(results, "her"), one(results, "him")
    assert her.housemates == 1
    for kind in (K.PROLONGED_INACTIVITY, K.MISSED_WAKEUP):
        status, why, fix = detection(her, kind)
        assert status is N
        assert "lives with 1 other resident" in why and "no band of their own" in why
        assert fix is not None and "band" in fix
        assert detection(him, kind)[0] is W  # judged on his own band
    # her vitals: nobody measures them; his band does
    for kind in (K.TACHYCARDIA, K.BRADYCARDIA, K.LOW_SPO2, K.FEVER):
        assert detection(her, kind)[0] is N
        assert detection(him, kind)[0] is W
    # the home's own hazards and climate are everyone's
    assert detection(her, K.SMOKE)[0] is W
    assert detection(her, K.COLD_ROOM)[0] is W
    assert detection(her, K.GAS)[0] is N


def test_a_bed_mat_alone_does_not_set_her_apart_from_a_housemate() -> None:
    results = assess_site([res("her"), res("him")], [*HOME, bed("mat-her", "her")], NOW)
    status, why, _ = detection(one(results, "her"), K.PROLONGED_INACTIVITY)
    assert status is N and "bed mat alone" in why
    assert detection(one(results, "her"), K.BED_EXIT_NOT_RETURNED)[0] is W
    assert detection(one(results, "him"), K.BED_EXIT_NOT_RETURNED)[0] is N
    # her mat's heart rate, only while in bed
    status, why, fix = detection(one(results, "her"), K.TACHYCARDIA)
    assert status is P and "in bed" in why and fix == "a band"
    assert detection(one(results, "her"), K.LOW_SPO2)[0] is N


def test_falls_by_device() -> None:
    alone = [res("r")]
    # SOS button only: no fall detector at all
    status, why, fix = detection(assess_site(alone, HOME, NOW)[0], K.FALL)
    assert status is N and "only an SOS press" in why
    assert fix is not None and "radar" in fix and "band" in fix
    # nothing at all
    status, why, _ = detection(assess_site(alone, [], NOW)[0], K.FALL)
    assert status is N and "no SOS button" in why
    # band only: ~80 %
    r = assess_site(alone, [*HOME, band("b", "r")], NOW)[0]
    status, why, fix = detection(r, K.FALL)
    assert status is P and "band fall alarm only" in why and "80 %" in why
    assert fix is not None and "radar" in fix
    # a bathroom radar only: that room only
    radar = dev("radar", catalog.RADAR.type, "bathroom")
    status, why, fix = detection(assess_site(alone, [*HOME, radar], NOW)[0], K.FALL)
    assert status is P and "bathroom only" in why and fix == "a band (fall alarm)"
    # both
    r = assess_site(alone, [*HOME, radar, band("b", "r")], NOW)[0]
    assert detection(r, K.FALL)[0] is W
    assert set(next(d for d in r.detections if d.kind is K.FALL).devices) == {"b", "radar"}


def test_sos_needs_a_button_or_a_band() -> None:
    assert detection(assess_site([res("r")], HOME, NOW)[0], K.SOS)[0] is W
    no_button = [d for d in HOME if d.id != "sos"]
    status, _, fix = detection(assess_site([res("r")], no_button, NOW)[0], K.SOS)
    assert status is N and fix is not None and "SOS button" in fix
    r = assess_site([res("r")], [*no_button, band("b", "r")], NOW)[0]
    assert detection(r, K.SOS)[0] is W
    # a housemate's band does not help her
    r = one(assess_site([res("r"), res("o")], [*no_button, band("b", "o")], NOW), "r")
    assert detection(r, K.SOS)[0] is N
    # a housemate's button does, partly: the alert names the housemate
    button = dev("sos-o", "sos_button", "bedroom", resident="o")
    r = one(assess_site([res("r"), res("o")], [*no_button, button], NOW), "r")
    status, why, fix = detection(r, K.SOS)
    assert status is P and "housemate" in why and fix is not None and "own" in fix


def test_home_hazards_need_their_detector_whoever_it_belongs_to() -> None:
    devices = [
        dev("gas", "gas_detector", "kitchen", resident="o"),
        dev("co", "co_detector", "kitchen"),
        dev("leak", "water_leak_sensor", "bathroom"),
    ]
    r = one(assess_site([res("r"), res("o")], devices, NOW), "r")
    assert [detection(r, k)[0] for k in (K.SMOKE, K.GAS, K.CARBON_MONOXIDE, K.WATER_LEAK)] == [
        N,
        W,
        W,
        W,
    ]
    assert detection(r, K.SMOKE)[2] == "a smoke detector"


def test_inactivity_and_wakeup_living_alone() -> None:
    alone = [res("r")]
    # every room: watched
    r = assess_site(alone, HOME, NOW)[0]
    assert detection(r, K.PROLONGED_INACTIVITY)[0] is W
    assert detection(r, K.MISSED_WAKEUP)[0] is W
    # no bathroom sensor: the limit of the last room seen (3 h by day, not 1 h)
    no_bath = [d for d in HOME if d.id != "pir-bath"]
    status, why, fix = detection(assess_site(alone, no_bath, NOW)[0], K.PROLONGED_INACTIVITY)
    assert status is P and "3 h by day, not 1 h" in why
    assert fix is not None and "bathroom" in fix
    # only a bedroom PIR: inactivity partial, wake-up not watched (getting up is outside)
    bedroom = [dev("pir-bed", "motion_sensor", "bedroom")]
    r = assess_site(alone, bedroom, NOW)[0]
    assert detection(r, K.PROLONGED_INACTIVITY)[0] is P
    status, why, _ = detection(r, K.MISSED_WAKEUP)
    assert status is N and "only a bedroom sensor" in why
    # a band alone: its steps count, with a blind spot off the wrist
    r = assess_site(alone, [band("b", "r")], NOW)[0]
    status, why, _ = detection(r, K.PROLONGED_INACTIVITY)
    assert status is P and "off the" in why
    assert detection(r, K.MISSED_WAKEUP)[0] is W
    # nothing
    r = assess_site(alone, [dev("smoke", "smoke_detector", "kitchen")], NOW)[0]
    assert detection(r, K.PROLONGED_INACTIVITY)[0] is N
    assert detection(r, K.MISSED_WAKEUP)[0] is N


def test_wakeup_follows_the_rule_rooms_and_bed_exit() -> None:
    # a resident whose wake-up rule counts only the kitchen: a bathroom PIR is not enough
    only_kitchen = res("r", care_profile={"missed_wakeup": {"rooms": ["kitchen"]}})
    devices = [dev("pir-bath", "motion_sensor", "bathroom")]
    assert detection(assess_site([only_kitchen], devices, NOW)[0], K.MISSED_WAKEUP)[0] is N
    # getting out of bed counts (count_bed_exit)
    r = assess_site([only_kitchen], [*devices, bed("mat", "r")], NOW)[0]
    assert detection(r, K.MISSED_WAKEUP)[0] is W


def test_night_wandering_needs_a_front_door_sensor() -> None:
    status, why, fix = detection(assess_site([res("r")], [], NOW)[0], K.NIGHT_WANDERING)
    assert status is N and why == "no door sensor" and fix is not None and "entrance" in fix
    back = [dev("door-k", "door_sensor", "kitchen")]
    status, why, _ = detection(assess_site([res("r")], back, NOW)[0], K.NIGHT_WANDERING)
    assert status is N and "none in a watched room (entrance)" in why
    assert detection(assess_site([res("r")], HOME, NOW)[0], K.NIGHT_WANDERING)[0] is W
    # shared with a housemate: still raised, as a household alert
    r = one(assess_site([res("r"), res("o")], HOME, NOW), "r")
    status, why, _ = detection(r, K.NIGHT_WANDERING)
    assert status is W and "household alert" in why


def test_bed_exit_needs_her_bed_sensor() -> None:
    assert detection(assess_site([res("r")], HOME, NOW)[0], K.BED_EXIT_NOT_RETURNED)[0] is N
    r = assess_site([res("r")], [bed("mat", None)], NOW)[0]
    status, _, fix = detection(r, K.BED_EXIT_NOT_RETURNED)
    assert status is P and fix is not None and "bind" in fix


def test_an_offline_device_is_a_gap_now() -> None:
    silent = NOW - timedelta(days=3)
    b = band("b", "r", status="offline", last_seen=silent)
    r = assess_site([res("r")], [*HOME, b], NOW)[0]
    d = next(d for d in r.detections if d.kind is K.TACHYCARDIA)
    assert (d.status, d.installed) == (N, W)
    assert d.offline == ("b",) and d.fix == "bring back online: b"
    assert "offline now: wearable (b)" in d.why
    # a band silent for 2 h is not offline by the rules (24 h floor): still watched
    recent = band("b", "r", status="offline", last_seen=NOW - timedelta(hours=2))
    assert detection(assess_site([res("r")], [*HOME, recent], NOW)[0], K.TACHYCARDIA)[0] is W
    # a dead gateway silences its devices: the smoke detector now
    dead = [dev("smoke", "smoke_detector", "kitchen", gateway_down=True)]
    d = next(d for d in assess_site([res("r")], dead, NOW)[0].detections if d.kind is K.SMOKE)
    assert (d.status, d.installed, d.offline) == (N, W, ("smoke",))
    # one of two PIRs offline: still watched, and said
    two = [
        dev("pir-liv", "motion_sensor", "living_room", status="offline", last_seen=silent),
        dev("pir-bath", "motion_sensor", "bathroom"),
    ]
    d = next(
        d
        for d in assess_site([res("r")], two, NOW)[0].detections
        if d.kind is K.PROLONGED_INACTIVITY
    )
    assert d.status is W and d.offline == ("pir-liv",) and d.fix is None


def test_a_rule_switched_off_is_not_a_gap() -> None:
    r = res("r", care_profile={"bed_exit_not_returned": {"enabled": False}})
    out = assess_site([r], HOME, NOW)[0]
    assert detection(out, K.BED_EXIT_NOT_RETURNED)[0] is OFF
    book = RuleBook([RuleRow(scope="site", scope_id="hh-1", kind=K.GAS, params={}, enabled=False)])
    out = assess_site([res("r")], HOME, NOW, book=book)[0]
    assert detection(out, K.GAS)[0] is OFF
    assert OFF not in {d.status for d in out.gaps()}


def test_a_sensor_in_another_residents_room_is_not_hers() -> None:
    """Nursing home: a shared sensor in someone's own room counts only for that room's
    residents (as store.activity_entries); the corridor's for everyone."""
    a = res("a", site="nh", room="nh-101")
    b = res("b", site="nh", room="nh-102")
    pir_a = dev("pir-101", "motion_sensor", "bedroom", site="nh", room="nh-101")
    corridor = dev("pir-cor", "motion_sensor", "corridor", site="nh", room="nh-cor")
    own_rooms = {"nh-101", "nh-102"}
    assert counts_for(a, pir_a, own_rooms) and not counts_for(b, pir_a, own_rooms)
    assert counts_for(a, corridor, own_rooms) and counts_for(b, corridor, own_rooms)
    climate = dev("t-101", "temperature_humidity_sensor", "bedroom", site="nh", room="nh-101")
    results = assess_site([a, b], [pir_a, corridor, climate], NOW)
    assert detection(one(results, "a"), K.COLD_ROOM)[0] is W
    assert detection(one(results, "b"), K.COLD_ROOM)[0] is N


def test_unknown_device_types_are_listed() -> None:
    r = assess_site([res("r")], [dev("x", "lava_lamp", "living_room")], NOW)[0]
    assert r.unknown_types == ("lava_lamp",)


def test_every_simulated_device_type_is_known() -> None:
    """The device types the simulator installs all feed some detection here."""
    for t in catalog.BY_MODEL.values():
        d = dev("x", t.type, "living_room", family=t.family.value)
        assert d.codes(), t.type


def test_summary_per_site_and_township() -> None:
    residents = [res("her"), res("him"), res("solo", site="hh-2")]
    results = assess_site(residents, [*HOME, band("band-him", "him")], NOW)
    assert [len(r.detections) for r in results] == [len(KINDS)] * 3
    summary = summarise(results, {"hh-1": "t-1", "hh-2": "t-1"})
    by = {(s.level, s.id): s for s in summary}
    assert [s.level for s in summary] == ["township", "site", "site"]
    hh1, t1 = by[("site", "hh-1")], by[("township", "t-1")]
    assert hh1.residents == 2 and t1.residents == 3
    assert hh1.not_watched["prolonged_inactivity"] == 1  # her
    assert t1.not_watched["prolonged_inactivity"] == 2  # her and solo (no device at all)
    assert hh1.partial["fall"] == 1  # him: band only
    assert hh1.not_watched["fall"] == 1  # her: SOS button only
    assert "smoke" not in hh1.not_watched and t1.not_watched["smoke"] == 1
