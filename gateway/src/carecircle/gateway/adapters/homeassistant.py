"""Home Assistant MQTT discovery and state topics (docs/contract.md §1.2).

``<base>/<component>/[<node_id>/]<object_id>/config`` (retained) describes an entity:
its state topic and ``device_class``.  Abbreviated keys and the ``~`` base are
expanded; an empty payload removes the entity.  The adapter returns what it learned;
the runtime keeps it in the registry and subscribes to the state topics.  A state
message then maps ``device_class`` to a canonical code; ``ON``/``OFF`` become 1/0.

The registry binds an entity (family ``homeassistant``) by its ``unique_id``,
``<node_id>/<object_id>``, ``<object_id>`` or ``<node_id>``, first match wins.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from carecircle.common.contract import Code, DeviceBinding, DeviceFamily, Kind
from carecircle.gateway.adapters.base import (
    AdapterResult,
    Draft,
    HaEntity,
    Unreadable,
    as_number,
    dead,
    ignored,
    parse_json,
    parse_object,
)
from carecircle.gateway.registry.registry import Registry, is_bathroom_presence

FAMILY = DeviceFamily.HOMEASSISTANT
ABBREVIATIONS = {
    "stat_t": "state_topic",
    "dev_cla": "device_class",
    "avty_t": "availability_topic",
    "avty": "availability",
    "uniq_id": "unique_id",
    "obj_id": "object_id",
    "val_tpl": "value_template",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "unit_of_meas": "unit_of_measurement",
    "t": "topic",
    "dev": "device",
    "ids": "identifiers",
}
BINARY = {
    "motion": Code.MOTION,
    "occupancy": Code.MOTION,
    "presence": Code.MOTION,
    "door": Code.DOOR,
    "window": Code.DOOR,
    "opening": Code.DOOR,
    "garage_door": Code.DOOR,
    "smoke": Code.SMOKE,
    "gas": Code.GAS,
    "carbon_monoxide": Code.CARBON_MONOXIDE,
    "moisture": Code.WATER_LEAK,
}
SENSOR = {
    "temperature": Code.ROOM_TEMPERATURE,
    "humidity": Code.HUMIDITY,
    "battery": Code.BATTERY,
}
ALARM_CODES = frozenset({Code.SMOKE, Code.GAS, Code.CARBON_MONOXIDE, Code.WATER_LEAK})
_TEMPLATE = re.compile(r"^\{\{\s*value_json((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*\}\}$")
_NO_VALUE = frozenset({"", "unknown", "unavailable", "None", "none", "null"})


def adapt(
    topic: str, payload: bytes, registry: Registry, received_at: datetime, base: str
) -> AdapterResult:
    if topic.startswith(base + "/") and topic.endswith("/config"):
        return _discovery(topic, payload, base)
    entity = registry.ha_by_topic.get(topic)
    if entity is None:
        return ignored("not a known Home Assistant topic")
    binding = _binding(entity, registry)
    if binding is None:
        return dead(f"unknown Home Assistant entity {entity.native_ids[0]!r:.64}", topic, payload)
    if topic == entity.availability_topic and topic != entity.state_topic:
        return _availability(entity, binding, topic, payload, received_at)
    return _state(entity, binding, topic, payload, received_at)


def _expand(doc: dict[str, Any]) -> dict[str, Any]:
    out = {ABBREVIATIONS.get(k, k): v for k, v in doc.items()}
    tilde = out.get("~")
    if isinstance(tilde, str):
        for key, value in list(out.items()):
            if key.endswith("_topic") and isinstance(value, str):
                if value.startswith("~"):
                    out[key] = tilde + value[1:]
                elif value.endswith("~"):
                    out[key] = value[:-1] + tilde
    return out


def _discovery(topic: str, payload: bytes, base: str) -> AdapterResult:
    parts = topic[len(base) + 1 :].split("/")
    if len(parts) not in (3, 4):
        return dead(
            "discovery topics are <base>/<component>/[<node_id>/]<object_id>/config", topic, payload
        )
    component, object_id = parts[0], parts[-2]
    node_id = parts[1] if len(parts) == 4 else None
    if not payload:
        return AdapterResult(forget=[topic])
    try:
        doc = _expand(parse_object(payload))
    except Unreadable as err:
        return dead(f"discovery config: {err}", topic, payload)
    device_class = doc.get("device_class")
    table = BINARY if component == "binary_sensor" else SENSOR if component == "sensor" else {}
    if not isinstance(device_class, str) or device_class not in table:
        return AdapterResult(
            forget=[topic], ignored=f"{component} {device_class!r:.40} has no canonical code"
        )
    state_topic = doc.get("state_topic")
    if (
        not isinstance(state_topic, str)
        or not state_topic
        or "#" in state_topic
        or "+" in state_topic
    ):
        return dead("discovery config has no usable state_topic", topic, payload)
    json_path: tuple[str, ...] | None = None
    template = doc.get("value_template")
    if template is not None:
        match = _TEMPLATE.match(str(template).strip())
        if match is None:
            return dead(f"unsupported value_template {str(template)!r:.60}", topic, payload)
        json_path = tuple(match.group(1).split(".")[1:])
    availability = doc.get("availability_topic")
    if availability is None and isinstance(doc.get("availability"), list) and doc["availability"]:
        first = doc["availability"][0]
        if isinstance(first, dict):
            first = _expand({str(k): v for k, v in first.items()})
            availability = first.get("topic")
    unique_id = doc.get("unique_id")
    ids = (
        [str(unique_id)]
        if isinstance(unique_id, str | int) and not isinstance(unique_id, bool)
        else []
    )
    if node_id:
        ids.append(f"{node_id}/{object_id}")
    ids.append(object_id)
    if node_id:
        ids.append(node_id)
    # one physical device has several entities (temperature, humidity, battery …):
    # the registry may name it by its device identifier, shared by all of them
    ids.extend(i for i in _device_identifiers(doc) if i not in ids)
    entity = HaEntity(
        key=topic,
        component=component,
        device_class=device_class,
        state_topic=state_topic,
        native_ids=tuple(ids),
        payload_on=str(doc.get("payload_on", "ON")),
        payload_off=str(doc.get("payload_off", "OFF")),
        json_path=json_path,
        availability_topic=availability if isinstance(availability, str) and availability else None,
        payload_available=str(doc.get("payload_available", "online")),
        payload_not_available=str(doc.get("payload_not_available", "offline")),
    )
    return AdapterResult(learned=[entity])


def _device_identifiers(doc: dict[str, Any]) -> list[str]:
    """``device.identifiers`` (or ``dev.ids``) of a discovery config: a string or a list."""
    device = doc.get("device")
    if not isinstance(device, dict):
        return []
    raw = _expand({str(k): v for k, v in device.items()}).get("identifiers")
    values = raw if isinstance(raw, list) else [raw]
    return [str(v) for v in values if isinstance(v, str | int) and not isinstance(v, bool)]


def _binding(entity: HaEntity, registry: Registry) -> DeviceBinding | None:
    for native_id in entity.native_ids:
        binding = registry.lookup(FAMILY, native_id)
        if binding is not None:
            return binding
    return None


def _availability(
    entity: HaEntity, b: DeviceBinding, topic: str, payload: bytes, received_at: datetime
) -> AdapterResult:
    text = payload.decode("utf-8", "replace").strip()
    if text not in (entity.payload_available, entity.payload_not_available):
        return dead(
            f"availability payload {text!r:.40} is neither available nor not", topic, payload, b.id
        )
    value = 1.0 if text == entity.payload_available else 0.0
    draft = Draft(
        b,
        Kind.STATUS,
        Code.AVAILABILITY,
        value,
        received_at,
        {"source": "homeassistant"},
        device_spoke=False,
    )
    return AdapterResult(drafts=[draft])


def _state(
    entity: HaEntity, b: DeviceBinding, topic: str, payload: bytes, received_at: datetime
) -> AdapterResult:
    try:
        raw: Any
        if entity.json_path is not None:
            raw = parse_json(payload)
            for key in entity.json_path:
                if not isinstance(raw, dict) or key not in raw:
                    raise Unreadable(f"state has no value_json.{'.'.join(entity.json_path)}")
                raw = raw[key]
        else:
            raw = payload.decode("utf-8").strip()
        if raw is None or (isinstance(raw, str) and raw in _NO_VALUE):
            return ignored("entity has no value yet")
        if entity.component == "binary_sensor":
            text = str(raw) if not isinstance(raw, bool) else ("ON" if raw else "OFF")
            if text == entity.payload_on:
                value = 1.0
            elif text == entity.payload_off:
                value = 0.0
            else:
                on, off = entity.payload_on, entity.payload_off
                raise Unreadable(f"binary state {text!r:.40} is neither {on!r} nor {off!r}")
            code = BINARY[str(entity.device_class)]
            if code is Code.MOTION and is_bathroom_presence(b):
                code = Code.BATHROOM_PRESENCE
        else:
            if isinstance(raw, str):
                try:
                    raw = float(raw)
                except ValueError as err:
                    raise Unreadable(f"sensor state {raw!r:.40} is not a number") from err
            value = as_number(raw, "state")
            code = SENSOR[str(entity.device_class)]
    except UnicodeDecodeError:
        return dead("payload is not UTF-8 text", topic, payload, b.id)
    except Unreadable as err:
        return dead(str(err), topic, payload, b.id)
    kind = Kind.STATUS if code is Code.BATTERY else Kind.READING
    drafts = [Draft(b, kind, code, value, received_at, {"source": "homeassistant"})]
    if code in ALARM_CODES:
        drafts.append(
            Draft(
                b, Kind.EVENT, code, value, received_at, {"source": "homeassistant"}, trigger="rise"
            )
        )
    return AdapterResult(drafts=drafts)
