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

    def for_site(self, site_id: str, gateway_id: str) -> TopicBases:
        def fill(template: str) -> str:
            return template.replace("{site}", site_id).replace("{gw}", gateway_id)

        return TopicBases(
            fill(self.zigbee2mqtt), fill(self.careband), fill(self.bedsensor), self.topic_root
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
