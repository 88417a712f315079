"""Home Assistant MQTT discovery and state topics (docs/contract.md §1.2)."""

from __future__ import annotations

import json

from carecircle.common.contract import Code, Kind
from carecircle.gateway.adapters import Bases, route
from carecircle.gateway.pipeline import Normaliser
from carecircle.gateway.registry import Registry

from .conftest import T0

HA = "homeassistant"


def learn(registry: Registry, topic: str, doc: dict[str, object]) -> Registry:
    r = route(topic, json.dumps(doc).encode(), registry, T0, Bases())
    assert r.learned, (r.ignored, r.dead_letters)
    return registry.with_ha(r.learned, r.forget)


def test_full_keys_motion_on_off(registry: Registry) -> None:
    reg = learn(
        registry,
        f"{HA}/binary_sensor/garden/config",
        {
            "name": "garden",
            "device_class": "motion",
            "state_topic": f"{HA}/binary_sensor/garden/state",
        },
    )
    on = route(f"{HA}/binary_sensor/garden/state", b"ON", reg, T0, Bases())
    off = route(f"{HA}/binary_sensor/garden/state", b"OFF", reg, T0, Bases())
    assert [(d.code, d.value, d.binding.id) for d in on.drafts] == [
        (Code.MOTION, 1.0, "dev-ha-motion")
    ]
    assert [d.value for d in off.drafts] == [0.0]
    assert route(f"{HA}/binary_sensor/garden/state", b"MAYBE", reg, T0, Bases()).dead_letters


def test_abbreviations_tilde_value_template_and_node_id(registry: Registry) -> None:
    reg = learn(
        registry,
        f"{HA}/sensor/kitchen_th/temperature/config",
        {
            "~": "home/kitchen/th",
            "name": "Kitchen temperature",
            "dev_cla": "temperature",
            "stat_t": "~/state",
            "val_tpl": "{{ value_json.temperature }}",
            "unit_of_meas": "°C",
            "uniq_id": "kitchen_th_temperature",
        },
    )
    reg = learn(
        reg,
        f"{HA}/sensor/kitchen_th/humidity/config",
        {
            "~": "home/kitchen/th",
            "dev_cla": "humidity",
            "stat_t": "~/state",
            "val_tpl": "{{value_json.humidity}}",
        },
    )
    r = route("home/kitchen/th/state", b'{"temperature": 21.5, "humidity": 40}', reg, T0, Bases())
    # one state topic, two entities: the last learned wins that topic
    assert [(d.code, d.value, d.binding.id) for d in r.drafts] == [
        (Code.HUMIDITY, 40.0, "dev-ha-th")
    ]


def test_smoke_event_on_rise_and_battery_status(registry: Registry) -> None:
    reg = learn(
        registry,
        f"{HA}/binary_sensor/smoke01/config",
        {
            "device_class": "smoke",
            "state_topic": "z/smoke01",
            "payload_on": "1",
            "payload_off": "0",
        },
    )
    n = Normaliser("gw-0001", Bases())
    kinds = [
        [e.kind for e in n.process("z/smoke01", p, reg, T0).envelopes] for p in (b"0", b"1", b"1")
    ]
    assert kinds == [[Kind.READING], [Kind.READING, Kind.EVENT], [Kind.READING]]


def test_removal_unknown_and_unsupported(registry: Registry) -> None:
    topic = f"{HA}/binary_sensor/garden/config"
    reg = learn(registry, topic, {"device_class": "motion", "state_topic": "g/state"})
    gone = route(topic, b"", reg, T0, Bases())
    reg = reg.with_ha(gone.learned, gone.forget)
    assert "g/state" not in reg.ha_by_topic
    light = route(f"{HA}/light/lamp/config", b'{"state_topic": "l/state"}', reg, T0, Bases())
    assert light.ignored and not light.learned
    template = route(
        f"{HA}/sensor/x/config",
        json.dumps(
            {
                "device_class": "temperature",
                "state_topic": "x",
                "value_template": "{{ value | float * 2 }}",
            }
        ).encode(),
        reg,
        T0,
        Bases(),
    )
    assert "unsupported value_template" in template.dead_letters[0].reason
    stranger = learn(
        reg, f"{HA}/binary_sensor/shed/config", {"device_class": "door", "state_topic": "shed/s"}
    )
    assert (
        "unknown Home Assistant entity"
        in route("shed/s", b"ON", stranger, T0, Bases()).dead_letters[0].reason
    )


def test_entities_bind_by_their_device_identifier(registry: Registry) -> None:
    """Several entities of one device (as the simulator and HA integrations announce
    them): unique ids that name the entity, the registry names the device."""
    reg = registry
    for field, topic_id in (("temperature", "t"), ("humidity", "h")):
        reg = learn(
            reg,
            f"{HA}/sensor/hh-0001/kitchen_th_{field}/config",
            {
                "device_class": field,
                "unique_id": f"x-kitchen_th_{field}",
                "state_topic": f"{HA}/sensor/hh-0001/kitchen_th_{topic_id}/state",
                "dev": {"ids": ["kitchen_th"], "name": "kitchen"},
            },
        )
    t = route(f"{HA}/sensor/hh-0001/kitchen_th_t/state", b"8.5", reg, T0, Bases())
    h = route(f"{HA}/sensor/hh-0001/kitchen_th_h/state", b"61", reg, T0, Bases())
    assert [(d.code, d.value, d.binding.id) for d in t.drafts + h.drafts] == [
        (Code.ROOM_TEMPERATURE, 8.5, "dev-ha-th"),
        (Code.HUMIDITY, 61.0, "dev-ha-th"),
    ]
    # a unique id that is a registry native id still wins over the device identifier
    reg = learn(
        reg,
        f"{HA}/binary_sensor/hh-0001/garden_m/config",
        {
            "device_class": "motion",
            "unique_id": "garden",
            "state_topic": f"{HA}/binary_sensor/hh-0001/garden_m/state",
            "device": {"identifiers": "kitchen_th"},
        },
    )
    m = route(f"{HA}/binary_sensor/hh-0001/garden_m/state", b"ON", reg, T0, Bases())
    assert [d.binding.id for d in m.drafts] == ["dev-ha-motion"]
