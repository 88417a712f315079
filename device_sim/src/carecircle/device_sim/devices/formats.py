"""Native device payloads, exactly as docs/contract.md §1 describes them.

* zigbee2mqtt: ``{base}/<friendly_name>`` JSON state (``contact`` true = closed),
  ``{base}/<friendly_name>/availability`` retained, as 1.x ``online``/``offline`` or
  2.x ``{"state":"online"}`` depending on the site's bridge version, and
  ``{base}/bridge/state``.
* CareBand wearable: ``{base}/<MAC>/telemetry``, ``/alarm``, ``/availability``.
* Bed mat: ``{base}/<id>/state`` and ``/availability``.

Bases are templates: ``{site}`` and ``{gw}`` are replaced by the site and gateway id,
so one broker can carry many homes (``sim/{gw}/zigbee2mqtt``) or a test can prefix
them with its topic root (``t1234/zigbee2mqtt``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from carecircle.device_sim.simtime import iso_local

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class TopicBases:
    zigbee2mqtt: str = "zigbee2mqtt"
    careband: str = "careband"
    bedsensor: str = "bedsensor"
    #: CareCircle topic root for the simulator's own topics (control, ground truth, faults).
    topic_root: str = "cc"
    #: Home Assistant MQTT discovery prefix.
    homeassistant: str = "homeassistant"

    def for_site(self, site_id: str, gateway_id: str) -> TopicBases:
        def fill(template: str) -> str:
            return template.replace("{site}", site_id).replace("{gw}", gateway_id)

        return TopicBases(
            fill(self.zigbee2mqtt),
            fill(self.careband),
            fill(self.bedsensor),
            self.topic_root,
            fill(self.homeassistant),
        )

    @property
    def control(self) -> str:
        return f"{self.topic_root}/v1/sim/control"

    @property
    def control_ack(self) -> str:
        return f"{self.topic_root}/v1/sim/control/ack"

    @property
    def truth(self) -> str:
        return f"{self.topic_root}/v1/sim/truth"

    def uplink_fault(self, gateway_id: str) -> str:
        return f"{self.topic_root}/v1/sim/uplink/{gateway_id}"


def dumps(obj: dict[str, Any]) -> str:
    return _dumps(obj)


def _scalar(v: object) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int | float):
        return repr(v)
    return _dumps(v)


def flat_json(obj: dict[str, Any]) -> str:
    """Compact JSON of a flat dict of scalars (the hot path; same text as ``dumps``)."""
    return "{" + ",".join(f'"{k}":{_scalar(v)}' for k, v in obj.items()) + "}"


def z2m_availability(online: bool, v2: bool) -> str:
    state = "online" if online else "offline"
    return _dumps({"state": state}) if v2 else state


def band_telemetry(
    mac: str,
    ts_ms: int,
    battery: int,
    worn: bool,
    steps: int,
    hr: int | None = None,
    spo2: int | None = None,
    skin_temp: float | None = None,
) -> str:
    parts = [f'{{"mac":"{mac}","ts":{ts_ms}']
    if hr is not None:
        parts.append(f',"hr":{hr}')
    if spo2 is not None:
        parts.append(f',"spo2":{spo2}')
    if skin_temp is not None:
        parts.append(f',"skin_temp":{skin_temp!r}')
    parts.append(f',"steps":{steps},"battery":{battery},"worn":{"true" if worn else "false"}}}')
    return "".join(parts)


def band_alarm(mac: str, ts_ms: int, kind: str, confidence: float) -> str:
    return _dumps({"mac": mac, "ts": ts_ms, "type": kind, "confidence": confidence})


def bed_state(
    device_ms: int, occupied: bool, hr: int | None = None, rr: int | None = None, movement: int = 0
) -> str:
    out: dict[str, Any] = {"ts": iso_local(device_ms), "occupied": occupied}
    if occupied:
        if hr is not None:
            out["hr"] = hr
        if rr is not None:
            out["rr"] = rr
        out["movement"] = movement
    return _dumps(out)


@dataclass(frozen=True)
class HaEntity:
    """One Home Assistant entity of a device (MQTT discovery)."""

    component: str
    object_id: str
    device_class: str
    field: str
    unit: str | None
    state_topic: str
    config_topic: str


def ha_entities(
    prefix: str,
    node_id: str,
    native_id: str,
    specs: tuple[tuple[str, str, str, str, str | None], ...],
) -> list[HaEntity]:
    out = []
    for component, suffix, device_class, fld, unit in specs:
        object_id = f"{native_id}_{suffix}"
        base = f"{prefix}/{component}/{node_id}/{object_id}"
        out.append(
            HaEntity(
                component, object_id, device_class, fld, unit, f"{base}/state", f"{base}/config"
            )
        )
    return out


def ha_config(e: HaEntity, availability_topic: str, native_id: str, model: str) -> str:
    """Retained discovery config of one entity (full key names, no ``~``)."""
    body: dict[str, Any] = {
        "name": e.object_id.replace("_", " "),
        "unique_id": e.object_id,
        "object_id": e.object_id,
        "device_class": e.device_class,
        "state_topic": e.state_topic,
        "availability_topic": availability_topic,
    }
    if e.unit is not None:
        body["unit_of_measurement"] = e.unit
        body["state_class"] = "measurement"
    body["device"] = {"identifiers": [native_id], "name": native_id, "model": model}
    return _dumps(body)


def ha_states(entities: list[HaEntity], state: dict[str, Any]) -> list[tuple[str, str]]:
    """Home Assistant state messages for a zigbee2mqtt-style state dict.

    Binary sensors publish ``ON``/``OFF`` (a door is ``ON`` when open, i.e. when
    zigbee2mqtt's ``contact`` is false); sensors publish the number as text.
    """
    out = []
    for e in entities:
        if e.field not in state:
            continue
        value = state[e.field]
        if e.component == "binary_sensor":
            on = (not value) if e.field == "contact" else bool(value)
            out.append((e.state_topic, "ON" if on else "OFF"))
        else:
            out.append((e.state_topic, repr(value) if isinstance(value, float) else str(value)))
    return out
