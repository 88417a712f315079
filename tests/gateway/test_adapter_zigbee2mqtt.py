"""zigbee2mqtt adapter on real payload shapes (docs/contract.md §1.1, zigbee2mqtt docs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from carecircle.common.contract import Code, GatewayConfig, Kind
from carecircle.gateway.adapters import Bases
from carecircle.gateway.adapters import zigbee2mqtt as z2m
from carecircle.gateway.pipeline import Normaliser
from carecircle.gateway.registry import Registry

from .conftest import SITE, T0, binding

BASE = "zigbee2mqtt"


def adapt(registry: Registry, name: str, doc: object, suffix: str = "") -> z2m.AdapterResult:
    payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return z2m.adapt(f"{BASE}/{name}{suffix}", payload, registry, T0, BASE)


def codes(result: z2m.AdapterResult) -> list[tuple[str, str, float | None]]:
    return [(d.kind.value, d.code.value, d.value) for d in result.drafts]


def test_motion_sensor_full_state_with_last_seen_iso(registry: Registry) -> None:
    doc = {
        "battery": 100,
        "voltage": 3025,
        "illuminance": 1515,
        "illuminance_lux": 15,
        "linkquality": 0,
        "occupancy": False,
        "last_seen": "2026-11-29T08:59:17+01:00",
    }
    r = adapt(registry, "living_motion", doc)
    assert not r.dead_letters
    assert codes(r) == [
        ("reading", "motion", 0.0),
        ("status", "battery", 100.0),
        ("status", "link_quality", 0.0),
    ]
    assert all(d.ts == datetime(2026, 11, 29, 7, 59, 17, tzinfo=UTC) for d in r.drafts)
    assert r.drafts[1].attrs["voltage_mv"] == 3025
    assert r.drafts[0].binding.id == "dev-pir"


def test_last_seen_epoch_ms_and_absent(registry: Registry) -> None:
    ms = int((T0 - timedelta(seconds=3)).timestamp() * 1000)
    r = adapt(registry, "living_motion", {"occupancy": True, "last_seen": ms})
    assert r.drafts[0].ts == T0 - timedelta(seconds=3)
    assert adapt(registry, "living_motion", {"occupancy": True}).drafts[0].ts == T0


def test_presence_sensor_in_bathroom_is_bathroom_presence(registry: Registry) -> None:
    r = adapt(registry, "bathroom_radar", {"occupancy": True, "linkquality": 120})
    assert codes(r)[0] == ("reading", "bathroom_presence", 1.0)


def test_radar_fall_sensor_occupancy_is_presence_by_room() -> None:
    """The simulator's radar (type ``radar_fall_sensor``, as provisioned): its
    ``occupancy`` in a bathroom is ``bathroom_presence``, elsewhere ``motion``."""
    devices = [
        binding("dev-rb", "zigbee2mqtt", "radar_bath", "radar_fall_sensor", room="hh-0001-bath"),
        binding("dev-rl", "zigbee2mqtt", "radar_liv", "radar_fall_sensor"),
    ]
    reg = Registry.from_config(GatewayConfig(gw="gw-0001", site=SITE, version=1, devices=devices))
    doc = {"fall_status": "normal", "occupancy": True, "linkquality": 150}
    assert codes(adapt(reg, "radar_bath", doc))[0] == ("reading", "bathroom_presence", 1.0)
    assert codes(adapt(reg, "radar_liv", doc))[0] == ("reading", "motion", 1.0)


def test_contact_true_means_closed(registry: Registry) -> None:
    closed = adapt(registry, "front/door", {"contact": True, "battery": 91, "voltage": 2995})
    opened = adapt(registry, "front/door", {"contact": False})
    assert codes(closed)[0] == ("reading", "door", 0.0)
    assert codes(opened) == [("reading", "door", 1.0)]
    assert closed.drafts[0].binding.id == "dev-door"  # friendly names may contain '/'


def test_water_leak_smoke_co_gas_are_readings_plus_rise_events(registry: Registry) -> None:
    for name, field, code in [
        ("kitchen_leak", "water_leak", Code.WATER_LEAK),
        ("kitchen_smoke", "smoke", Code.SMOKE),
        ("boiler_co", "carbon_monoxide", Code.CARBON_MONOXIDE),
        ("stove_gas", "gas", Code.GAS),
    ]:
        r = adapt(registry, name, {field: True, "battery_low": False, "battery": 88})
        assert not r.dead_letters
        got = [(d.kind, d.code, d.value, d.trigger) for d in r.drafts if d.code is code]
        assert got == [(Kind.READING, code, 1.0, "always"), (Kind.EVENT, code, 1.0, "rise")]


def test_alarm_event_only_when_it_becomes_true(registry: Registry) -> None:
    n = Normaliser("gw-0001", Bases())
    seq = [False, True, True, False, True]
    events = []
    readings = []
    for value in seq:
        payload = json.dumps({"smoke": value, "battery": 90}).encode()
        out = n.process(f"{BASE}/kitchen_smoke", payload, registry, T0)
        events.append(sum(1 for e in out.envelopes if e.kind is Kind.EVENT))
        readings.append(sum(1 for e in out.envelopes if e.kind is Kind.READING))
    assert readings == [1, 1, 1, 1, 1]
    assert events == [0, 1, 0, 0, 1]


def test_temperature_humidity(registry: Registry) -> None:
    r = adapt(registry, "bedroom_climate", {"temperature": 27.34, "humidity": 44.72, "battery": 67})
    assert codes(r) == [
        ("reading", "room_temperature", 27.34),
        ("reading", "humidity", 44.72),
        ("status", "battery", 67.0),
    ]


def test_tuya_sos_emergency_and_heiman_sos_button(registry: Registry) -> None:
    tuya = adapt(registry, "sos_tuya", {"action": "emergency", "battery": 100, "linkquality": 87})
    assert codes(tuya)[0] == ("event", "sos", 1.0)
    assert tuya.drafts[0].attrs["action"] == "emergency"
    for action in ("single", "double", "hold", "off"):
        heiman = adapt(registry, "sos_heiman", {"action": action})
        assert codes(heiman) == [("event", "sos", 1.0)], action


def test_every_action_message_is_one_press_and_empty_action_is_not(registry: Registry) -> None:
    n = Normaliser("gw-0001", Bases())
    payload = json.dumps({"action": "single"}).encode()
    presses = [n.process(f"{BASE}/hall_button", payload, registry, T0).envelopes for _ in range(3)]
    assert [len(p) for p in presses] == [1, 1, 1]
    assert {p[0].payload.code for p in presses} == {Code.BUTTON}
    assert len({p[0].id for p in presses}) == 3
    assert adapt(registry, "hall_button", {"action": ""}).drafts == []


def test_vibration_actions_are_button_events_with_details(registry: Registry) -> None:
    r = adapt(
        registry,
        "bed_vibration",
        {"action": "vibration", "strength": 9, "angle_x": 3, "angle_y": -2, "angle_z": 88},
    )
    assert codes(r) == [("event", "button", 1.0)]
    assert r.drafts[0].attrs == {
        "action": "vibration",
        "strength": 9,
        "angle_x": 3,
        "angle_y": -2,
        "angle_z": 88,
    }
    assert adapt(registry, "bed_vibration", {"action": "drop"}).drafts[0].attrs["action"] == "drop"


def test_heiman_fall_radar(registry: Registry) -> None:
    n = Normaliser("gw-0001", Bases())
    topic = f"{BASE}/0x00158d0001a2b3c4"
    seq = ["normal", "fall_warning", "fall_alarm", "fall_alarm", "normal", "fall_alarm"]
    falls = []
    for status in seq:
        doc = {"fall_status": status, "occupancy": True, "linkquality": 150}
        out = n.process(topic, json.dumps(doc).encode(), registry, T0)
        falls.append([e.payload.value for e in out.envelopes if e.payload.code is Code.FALL])
        occ = next(e for e in out.envelopes if e.kind is Kind.READING)
        assert occ.payload.attrs["fall_status"] == status
    assert falls == [[], [], [1.0], [], [], [1.0]]


def test_availability_1x_plain_and_2x_json(registry: Registry) -> None:
    for payload, value in [
        (b"online", 1.0),
        (b"offline", 0.0),
        (b'{"state":"online"}', 1.0),
        (b'{"state":"offline"}', 0.0),
    ]:
        r = adapt(registry, "living_motion", payload, "/availability")
        assert codes(r) == [("status", "availability", value)], payload
        assert r.drafts[0].device_spoke is False
    bad = adapt(registry, "living_motion", b'{"state":"maybe"}', "/availability")
    assert bad.dead_letters and not bad.drafts


def test_bridge_and_commands_are_not_device_readings(registry: Registry) -> None:
    assert z2m.adapt(f"{BASE}/bridge/state", b'{"state":"online"}', registry, T0, BASE).ignored
    joined = {
        "type": "device_joined",
        "data": {"friendly_name": "0x90fd9ffffe6494fc", "ieee_address": "0x90fd9ffffe6494fc"},
    }
    r = z2m.adapt(f"{BASE}/bridge/event", json.dumps(joined).encode(), registry, T0, BASE)
    assert r.ignored and not r.drafts and not r.dead_letters
    assert adapt(registry, "living_motion", {"state": "ON"}, "/set").ignored


def test_unknown_device_malformed_and_impossible_values_are_dead_letters(
    registry: Registry,
) -> None:
    unknown = adapt(registry, "0x90fd9ffffe6494fc", {"occupancy": True})
    assert unknown.dead_letters[0].reason.startswith("unknown zigbee2mqtt device")
    broken = adapt(registry, "living_motion", b'{"occupancy": tru')
    assert "not JSON" in broken.dead_letters[0].reason
    not_object = adapt(registry, "living_motion", b"[1,2]")
    assert not_object.dead_letters
    wrong_type = adapt(registry, "living_motion", {"occupancy": "yes", "battery": 50})
    assert [d.code for d in wrong_type.drafts] == [Code.BATTERY]  # the good field survives
    assert "occupancy must be true or false" in wrong_type.dead_letters[0].reason
    n = Normaliser("gw-0001", Bases())
    out = n.process(f"{BASE}/living_motion", b'{"battery": 140, "linkquality": 90}', registry, T0)
    assert [e.payload.code for e in out.envelopes] == [Code.LINK_QUALITY]
    assert "above the possible maximum" in out.dead_letters[0]["reason"]
    years_off = {"occupancy": True, "last_seen": "2019-01-01T00:00:00Z"}
    out = n.process(f"{BASE}/living_motion", json.dumps(years_off).encode(), registry, T0)
    assert not out.envelopes and "implausible" in out.dead_letters[0]["reason"]
    nan = n.process(f"{BASE}/bedroom_climate", b'{"temperature": NaN}', registry, T0)
    assert not nan.envelopes and nan.dead_letters
