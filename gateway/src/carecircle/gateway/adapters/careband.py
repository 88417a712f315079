"""CareBand wearable behind a BLE-to-MQTT bridge (docs/contract.md §1.3).

``<base>/<MAC>/telemetry`` vitals, ``…/alarm`` fall/SOS, ``…/availability``.  ``ts`` is
the band's clock in epoch ms.  ``worn: false`` means the band is off the wrist: its
vitals are not the resident's and are dropped (kept as ``attrs.worn`` on the battery
status).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from carecircle.common.contract import Code, DeviceBinding, DeviceFamily, Kind
from carecircle.gateway.adapters.base import (
    AdapterResult,
    AttrValue,
    Draft,
    Unreadable,
    as_bool,
    as_number,
    dead,
    epoch_ms,
    ignored,
    parse_object,
    split_topic,
)
from carecircle.gateway.registry.registry import Registry

FAMILY = DeviceFamily.WEARABLE
MAC = re.compile(r"^[0-9A-F]{12}$")
VITALS = (
    ("hr", Code.HEART_RATE),
    ("spo2", Code.SPO2),
    ("skin_temp", Code.SKIN_TEMPERATURE),
    ("steps", Code.STEPS),
)
ALARMS = {"fall": Code.FALL, "sos": Code.SOS}


def adapt(
    topic: str, payload: bytes, registry: Registry, received_at: datetime, base: str
) -> AdapterResult:
    parts = split_topic(topic, base)
    if parts is None:
        return ignored("not a careband topic")
    if len(parts) != 2 or parts[1] not in ("telemetry", "alarm", "availability"):
        return dead("careband topics are <base>/<MAC>/telemetry|alarm|availability", topic, payload)
    mac, channel = parts[0].upper(), parts[1]
    if not MAC.match(mac):
        return dead(f"careband MAC must be 12 hex digits, got {parts[0]!r:.40}", topic, payload)
    if not payload:
        return ignored("empty payload (retained message cleared)")
    binding = registry.lookup(FAMILY, mac)
    if binding is None:
        return dead(f"unknown careband {mac}", topic, payload)
    if channel == "availability":
        text = payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            return dead(
                f"availability must be online/offline, got {text!r:.40}", topic, payload, binding.id
            )
        value = 1.0 if text == "online" else 0.0
        draft = Draft(
            binding,
            Kind.STATUS,
            Code.AVAILABILITY,
            value,
            received_at,
            {"source": "careband"},
            device_spoke=False,
        )
        return AdapterResult(drafts=[draft])
    try:
        doc = parse_object(payload)
        if "mac" in doc and str(doc["mac"]).upper() != mac:
            raise Unreadable(f"payload mac {doc['mac']!r:.20} differs from the topic's {mac}")
        ts = epoch_ms(doc["ts"], "ts") if doc.get("ts") is not None else received_at
        if channel == "alarm":
            return AdapterResult(drafts=[_alarm(binding, doc, ts)])
    except Unreadable as err:
        return dead(str(err), topic, payload, binding.id)
    return _telemetry(binding, doc, ts, topic, payload)


def _alarm(b: DeviceBinding, doc: dict[str, Any], ts: datetime) -> Draft:
    kind = doc.get("type")
    if kind not in ALARMS:
        raise Unreadable(f"alarm type must be fall or sos, got {kind!r:.40}")
    attrs: dict[str, AttrValue] = {"source": "careband"}
    if "confidence" in doc:
        attrs["confidence"] = as_number(doc["confidence"], "confidence")
    return Draft(b, Kind.EVENT, ALARMS[kind], 1.0, ts, attrs)


def _telemetry(
    b: DeviceBinding, doc: dict[str, Any], ts: datetime, topic: str, payload: bytes
) -> AdapterResult:
    result = AdapterResult(spoke=[b.id])
    worn = True
    if "worn" in doc:
        try:
            worn = as_bool(doc["worn"], "worn") == 1.0
        except Unreadable as err:
            return dead(str(err), topic, payload, b.id)
    if worn:
        for key, code in VITALS:
            if doc.get(key) is None:
                continue  # fields come and go: SpO2 every few minutes, HR every minute
            try:
                result.drafts.append(Draft(b, Kind.READING, code, as_number(doc[key], key), ts))
            except Unreadable as err:
                result.dead(str(err), topic, payload, b.id)
    if doc.get("battery") is not None:
        try:
            battery = as_number(doc["battery"], "battery")
            result.drafts.append(Draft(b, Kind.STATUS, Code.BATTERY, battery, ts, {"worn": worn}))
        except Unreadable as err:
            result.dead(str(err), topic, payload, b.id)
    return result
