"""Bed mat sensor in nursing homes (docs/contract.md §1.4).

``<base>/<id>/state`` ``{"ts": RFC 3339, "occupied": bool, "hr", "rr", "movement"}``;
``<base>/<id>/availability`` ``online``/``offline``.  Vitals are only read while
someone is in bed (an empty mat reports zeros, which are not readings of anyone).
"""

from __future__ import annotations

from datetime import datetime

from carecircle.common.contract import Code, DeviceFamily, Kind
from carecircle.gateway.adapters.base import (
    AdapterResult,
    AttrValue,
    Draft,
    Unreadable,
    as_bool,
    as_number,
    dead,
    ignored,
    iso_time,
    parse_object,
    split_topic,
)
from carecircle.gateway.registry.registry import Registry

FAMILY = DeviceFamily.BED_SENSOR


def adapt(
    topic: str, payload: bytes, registry: Registry, received_at: datetime, base: str
) -> AdapterResult:
    parts = split_topic(topic, base)
    if parts is None:
        return ignored("not a bed sensor topic")
    if len(parts) != 2 or parts[1] not in ("state", "availability"):
        return dead("bed sensor topics are <base>/<id>/state|availability", topic, payload)
    if not payload:
        return ignored("empty payload (retained message cleared)")
    binding = registry.lookup(FAMILY, parts[0])
    if binding is None:
        return dead(f"unknown bed sensor {parts[0]!r:.64}", topic, payload)
    if parts[1] == "availability":
        text = payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            return dead(
                f"availability must be online/offline, got {text!r:.40}", topic, payload, binding.id
            )
        draft = Draft(
            binding,
            Kind.STATUS,
            Code.AVAILABILITY,
            1.0 if text == "online" else 0.0,
            received_at,
            {"source": "bedsensor"},
            device_spoke=False,
        )
        return AdapterResult(drafts=[draft])
    result = AdapterResult()
    try:
        doc = parse_object(payload)
        ts = iso_time(doc["ts"], "ts") if doc.get("ts") is not None else received_at
        occupied = as_bool(doc.get("occupied"), "occupied")
        attrs: dict[str, AttrValue] = {}
        if doc.get("movement") is not None:
            attrs["movement"] = as_number(doc["movement"], "movement")
    except Unreadable as err:
        return dead(str(err), topic, payload, binding.id)
    result.drafts.append(Draft(binding, Kind.READING, Code.BED_OCCUPANCY, occupied, ts, attrs))
    if occupied:
        for key, code in (("hr", Code.HEART_RATE), ("rr", Code.RESPIRATORY_RATE)):
            if doc.get(key) is None:
                continue
            try:
                result.drafts.append(
                    Draft(binding, Kind.READING, code, as_number(doc[key], key), ts)
                )
            except Unreadable as err:
                result.dead(str(err), topic, payload, binding.id)
    return result
