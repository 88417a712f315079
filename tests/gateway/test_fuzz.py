"""Arbitrary topics and payloads never raise out of the gateway's message handler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecircle.gateway.adapters import Bases, route
from carecircle.gateway.registry import Registry
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings

from .conftest import T0, config

NAMES = ["living_motion", "front/door", "kitchen_smoke", "sos_tuya", "0x00158d0001a2b3c4", "nobody"]
FIELDS = [
    "occupancy",
    "contact",
    "water_leak",
    "smoke",
    "carbon_monoxide",
    "gas",
    "temperature",
    "humidity",
    "action",
    "fall_status",
    "battery",
    "linkquality",
    "voltage",
    "last_seen",
    "battery_low",
    "strength",
    "state",
    "mac",
    "ts",
    "hr",
    "spo2",
    "skin_temp",
    "steps",
    "worn",
    "type",
    "confidence",
    "occupied",
    "rr",
    "movement",
    "device_class",
    "state_topic",
    "stat_t",
    "~",
    "val_tpl",
    "value_template",
    "payload_on",
    "availability",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "fall_alarm",
            "emergency",
            "single",
            "online",
            "{{ value_json.x }}",
            "~/s",
            "2026-11-29T08:00:00Z",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=8,
)


def _dump(doc: Any) -> bytes:
    try:
        return json.dumps(doc).encode()
    except ValueError:
        return b"{}"


plausible = st.fixed_dictionaries(
    {},
    optional={
        "occupancy": st.booleans(),
        "contact": st.booleans(),
        "smoke": st.booleans(),
        "water_leak": st.booleans(),
        "temperature": st.floats(-60, 90),
        "humidity": st.floats(-5, 105),
        "battery": st.integers(-5, 120),
        "linkquality": st.integers(0, 300),
        "action": st.sampled_from(["", "single", "emergency", "vibration", "hold"]),
        "fall_status": st.sampled_from(["normal", "fall_warning", "fall_alarm", "unknown"]),
        "hr": st.integers(0, 300),
        "spo2": st.integers(40, 150),
        "worn": st.booleans(),
        "type": st.sampled_from(["fall", "sos", "other"]),
        "occupied": st.booleans(),
        "rr": st.integers(0, 70),
    },
).map(_dump)
payloads = (
    plausible
    | st.binary(max_size=200)
    | st.dictionaries(st.sampled_from(FIELDS), values, max_size=8).map(_dump)
    | values.map(_dump)
    | st.sampled_from(
        [b"online", b"offline", b"ON", b"OFF", b"", b"NaN", b'{"state":"online"}', b"\xff\xfe"]
    )
)
known_topics = st.builds(
    lambda base, name, suffix: f"{base}/{name}{suffix}",
    st.sampled_from(["zigbee2mqtt", "careband", "bedsensor", "homeassistant"]),
    st.sampled_from([*NAMES, "A4C1380F2B7D", "bed-12", "binary_sensor/garden", "sensor/n/o"]),
    st.sampled_from(
        ["", "/availability", "/telemetry", "/alarm", "/state", "/config", "/set", "/bridge/event"]
    ),
)
valid_topics = st.sampled_from(
    [
        "zigbee2mqtt/living_motion",
        "zigbee2mqtt/front/door",
        "zigbee2mqtt/kitchen_smoke",
        "zigbee2mqtt/sos_tuya",
        "zigbee2mqtt/0x00158d0001a2b3c4",
        "zigbee2mqtt/living_motion/availability",
        "careband/A4C1380F2B7D/telemetry",
        "careband/A4C1380F2B7D/alarm",
        "bedsensor/bed-12/state",
    ]
)
topics = valid_topics | known_topics | st.text(min_size=1, max_size=60)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(topic=topics, payload=payloads)
def test_adapters_never_raise(topic: str, payload: bytes) -> None:
    registry = Registry.from_config(config())
    result = route(topic, payload, registry, T0, Bases())
    for letter in result.dead_letters:
        assert letter.reason


def test_gateway_handler_never_raises(tmp_path: Path) -> None:
    s = GatewaySettings(
        gateway_id="gw-0001", queue_path=tmp_path / "q.sqlite3", queue_synchronous="NORMAL"
    )
    gw = Gateway(s)
    gw.use_config(config())

    @settings(
        max_examples=400,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(topic=topics, payload=payloads, redelivered=st.booleans())
    def handle(topic: str, payload: bytes, redelivered: bool) -> None:
        before = len(gw.outbox)
        outcome = gw.handle_native(topic, payload, redelivered=redelivered)
        if outcome is not None:
            produced = len(outcome.envelopes) + len(outcome.dead_letters)
            assert len(gw.outbox) >= before + produced

    handle()
    assert gw.counters.received >= 400
    # the strategies reach the adapters' mapping code, not only their error paths
    assert gw.counters.enqueued > gw.counters.dead_letters > 0
    gw.outbox.close()
