"""zigbee2mqtt 1.x and 2.x (docs/contract.md §1.1).

``<base>/<friendly_name>`` carries the device state as one JSON object (every message
repeats the whole state, so alarm *events* fire on the rise only); ``…/availability``
is ``online``/``offline`` (1.x) or ``{"state": "online"}`` (2.x); ``bridge/…`` is the
bridge itself.  Friendly names may contain ``/``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from carecircle.common.contract import SOS_TYPES, Code, DeviceBinding, DeviceFamily, Kind
from carecircle.gateway.adapters.base import (
    AdapterResult,
    AttrValue,
    Draft,
    Unreadable,
    as_bool,
    as_number,
    dead,
    device_time,
    ignored,
    parse_json,
    scalar_attr,
)
from carecircle.gateway.registry.registry import Registry, is_bathroom_presence

log = logging.getLogger(__name__)

FAMILY = DeviceFamily.ZIGBEE2MQTT
#: Boolean alarm fields: a reading every time plus an event when it becomes true.
ALARM_FIELDS = {
    "water_leak": Code.WATER_LEAK,
    "smoke": Code.SMOKE,
    "carbon_monoxide": Code.CARBON_MONOXIDE,
    "gas": Code.GAS,
}
#: Device types whose every button action means "help": ``SOS_TYPES`` (the contract's).
SOS_ACTIONS = frozenset({"emergency", "sos", "panic"})
VIBRATION_ACTIONS = frozenset({"vibration", "tilt", "drop"})
#: Sub-topics that are commands *to* devices, not reports from them.
COMMAND_SUFFIXES = frozenset({"set", "get"})


def adapt(
    topic: str, payload: bytes, registry: Registry, received_at: datetime, base: str
) -> AdapterResult:
    if not topic.startswith(base + "/"):
        return ignored("not a zigbee2mqtt topic")
    rest = topic[len(base) + 1 :]
    if rest == "bridge" or rest.startswith("bridge/"):
        return _bridge(rest, payload)
    parts = rest.split("/")
    if any(p in COMMAND_SUFFIXES for p in parts[1:]):
        return ignored("a command to a device")
    if not payload:
        return ignored("empty payload (retained message cleared)")
    if parts[-1] == "availability" and len(parts) > 1:
        return _availability("/".join(parts[:-1]), topic, payload, registry, received_at)
    return _state(rest, topic, payload, registry, received_at)


def _bridge(rest: str, payload: bytes) -> AdapterResult:
    if rest == "bridge/state":
        log.info("zigbee2mqtt bridge state: %.60s", payload.decode("utf-8", "replace"))
    elif rest == "bridge/event":
        try:
            doc = parse_json(payload)
        except Unreadable:
            doc = None
        if isinstance(doc, dict) and doc.get("type") in ("device_joined", "device_interview"):
            data: dict[str, Any] = doc["data"] if isinstance(doc.get("data"), dict) else {}
            log.info(
                "zigbee2mqtt %s: %.64s (%.24s); its messages are dead-lettered until provisioned",
                doc.get("type"),
                str(data.get("friendly_name")),
                str(data.get("ieee_address")),
            )
    return ignored("zigbee2mqtt bridge message")


def _availability(
    name: str, topic: str, payload: bytes, registry: Registry, received_at: datetime
) -> AdapterResult:
    binding = registry.lookup(FAMILY, name)
    if binding is None:
        return dead(f"unknown zigbee2mqtt device {name!r}", topic, payload)
    text = payload.decode("utf-8", "replace").strip()
    state: Any = text
    if text.startswith("{"):
        try:
            doc = parse_json(payload)
        except Unreadable as err:
            return dead(str(err), topic, payload, binding.id)
        state = doc.get("state") if isinstance(doc, dict) else None
    if state not in ("online", "offline"):
        return dead(
            f"availability must be online/offline, got {state!r:.40}", topic, payload, binding.id
        )
    draft = Draft(
        binding,
        Kind.STATUS,
        Code.AVAILABILITY,
        1.0 if state == "online" else 0.0,
        received_at,
        {"source": "zigbee2mqtt"},
        device_spoke=False,
    )
    return AdapterResult(drafts=[draft])


def _state(
    name: str, topic: str, payload: bytes, registry: Registry, received_at: datetime
) -> AdapterResult:
    binding = registry.lookup(FAMILY, name)
    if binding is None:
        return dead(f"unknown zigbee2mqtt device {name!r}", topic, payload)
    try:
        doc = parse_json(payload)
    except Unreadable as err:
        return dead(str(err), topic, payload, binding.id)
    if not isinstance(doc, dict):
        return dead(f"expected a JSON object, got {type(doc).__name__}", topic, payload, binding.id)
    result = AdapterResult(spoke=[binding.id])
    ts = received_at
    if "last_seen" in doc and doc["last_seen"] is not None:
        try:
            ts = device_time(doc["last_seen"], "last_seen")
        except Unreadable as err:
            return dead(str(err), topic, payload, binding.id)
    for fieldname, handler in _FIELDS:
        if fieldname not in doc:
            continue
        try:
            result.drafts.extend(handler(binding, doc, ts))
        except Unreadable as err:
            result.dead(str(err), topic, payload, binding.id)
    return result


def _occupancy(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    value = as_bool(doc["occupancy"], "occupancy")
    code = Code.BATHROOM_PRESENCE if is_bathroom_presence(b) else Code.MOTION
    attrs: dict[str, AttrValue] = {}
    if "fall_status" in doc:
        attrs["fall_status"] = scalar_attr(doc["fall_status"])
    if isinstance(doc.get("no_occupancy_since"), int | float) and not isinstance(
        doc.get("no_occupancy_since"), bool
    ):
        attrs["no_occupancy_since"] = scalar_attr(doc["no_occupancy_since"])
    return [Draft(b, Kind.READING, code, value, ts, attrs)]


def _contact(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    closed = as_bool(doc["contact"], "contact")  # zigbee2mqtt: true = closed
    return [Draft(b, Kind.READING, Code.DOOR, 1.0 - closed, ts)]


def _alarm(fieldname: str) -> Any:
    code = ALARM_FIELDS[fieldname]

    def handler(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
        value = as_bool(doc[fieldname], fieldname)
        attrs: dict[str, AttrValue] = {}
        if isinstance(doc.get("battery_low"), bool):
            attrs["battery_low"] = doc["battery_low"]
        return [
            Draft(b, Kind.READING, code, value, ts, attrs),
            Draft(b, Kind.EVENT, code, value, ts, attrs, trigger="rise"),
        ]

    return handler


def _temperature(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    return [
        Draft(
            b, Kind.READING, Code.ROOM_TEMPERATURE, as_number(doc["temperature"], "temperature"), ts
        )
    ]


def _humidity(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    return [Draft(b, Kind.READING, Code.HUMIDITY, as_number(doc["humidity"], "humidity"), ts)]


def _action(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    action = doc["action"]
    if action is None or action == "":
        return []  # 1.x clears the action after publishing it: not a press
    if not isinstance(action, str):
        raise Unreadable(f"action must be a string, got {type(action).__name__}")
    attrs: dict[str, AttrValue] = {"action": action[:64]}
    if action in SOS_ACTIONS or b.type in SOS_TYPES:
        return [Draft(b, Kind.EVENT, Code.SOS, 1.0, ts, attrs)]
    if action in VIBRATION_ACTIONS:
        for key in ("strength", "angle_x", "angle_y", "angle_z"):
            if key in doc:
                attrs[key] = scalar_attr(doc[key])
    return [Draft(b, Kind.EVENT, Code.BUTTON, 1.0, ts, attrs)]


def _fall(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    status = doc["fall_status"]
    if not isinstance(status, str):
        raise Unreadable(f"fall_status must be a string, got {type(status).__name__}")
    value = 1.0 if status == "fall_alarm" else 0.0
    # One fall event when the radar enters fall_alarm; the state repeats in later messages.
    return [
        Draft(b, Kind.EVENT, Code.FALL, value, ts, {"fall_status": status[:32]}, trigger="rise")
    ]


def _battery(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    attrs: dict[str, AttrValue] = {}
    if "voltage" in doc:
        attrs["voltage_mv"] = as_number(doc["voltage"], "voltage")
    if isinstance(doc.get("battery_low"), bool):
        attrs["battery_low"] = doc["battery_low"]
    return [Draft(b, Kind.STATUS, Code.BATTERY, as_number(doc["battery"], "battery"), ts, attrs)]


def _linkquality(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> list[Draft]:
    return [
        Draft(b, Kind.STATUS, Code.LINK_QUALITY, as_number(doc["linkquality"], "linkquality"), ts)
    ]


_FIELDS = [
    ("occupancy", _occupancy),
    ("contact", _contact),
    *((f, _alarm(f)) for f in ALARM_FIELDS),
    ("temperature", _temperature),
    ("humidity", _humidity),
    ("action", _action),
    ("fall_status", _fall),
    ("battery", _battery),
    ("linkquality", _linkquality),
]
