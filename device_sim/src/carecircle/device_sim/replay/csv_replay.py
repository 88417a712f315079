"""Replay a recorded CSV through the normal device → gateway path.

The CSV has a header and the columns ``time,resident_or_device,kind,value``:

* ``time``: RFC 3339 (``Z`` or an offset; no offset means China Standard Time) or epoch
  seconds/milliseconds;
* ``resident_or_device``: a resident id (its band, bed mat or SOS button is used) or a
  device id or native id (friendly name, band MAC, bed-mat id) of the population;
* ``kind``: a canonical code (``heart_rate``, ``spo2``, ``skin_temperature``,
  ``steps``, ``motion``, ``door``, ``room_temperature``, ``humidity``, ``smoke``,
  ``gas``, ``carbon_monoxide``, ``water_leak``, ``sos``, ``fall``, ``button``,
  ``bed_occupancy``, ``respiratory_rate``, ``battery``, ``availability``) or ``worn``;
* ``value``: a number, or ``true``/``false``/``open``/``closed``/``on``/``off``
  (``door`` 1 = open, as in the canonical vocabulary); for ``button`` the action.

Every row becomes the native message the real device would send.  Rows that cannot be
mapped are reported with their line number and skipped; nothing else is dropped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from carecircle.device_sim.devices import formats
from carecircle.device_sim.engine.sites import Msg
from carecircle.device_sim.engine.world import SimDevice, World
from carecircle.device_sim.simtime import iso_local, parse_time

COLUMNS = ("time", "resident_or_device", "kind", "value")
BAND_FIELDS = {
    "heart_rate": "hr",
    "spo2": "spo2",
    "skin_temperature": "skin_temp",
    "steps": "steps",
}
ZIGBEE_BOOL = {
    "smoke": ("smoke_detector", "smoke"),
    "gas": ("gas_detector", "gas"),
    "carbon_monoxide": ("co_detector", "carbon_monoxide"),
    "water_leak": ("water_leak_sensor", "water_leak"),
}
TRUE = {"1", "1.0", "true", "on", "open", "yes", "online", "occupied"}
FALSE = {"0", "0.0", "false", "off", "closed", "no", "offline", "clear"}


@dataclass(frozen=True)
class Row:
    line: int
    t_ms: int
    subject: str
    kind: str
    value: str


@dataclass(frozen=True)
class ReplayResult:
    messages: list[Msg]
    errors: list[str]
    rows: int


class ReplayError(ValueError):
    pass


def read_rows(path: Path) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    errors: list[str] = []
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise ReplayError(f"cannot read {path}: {err.strerror}") from err
    with fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != list(COLUMNS):
            raise ReplayError(f"{path}: the header must be {','.join(COLUMNS)}")
        for n, raw in enumerate(reader, start=2):
            try:
                values = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                rows.append(
                    Row(
                        n,
                        parse_time(values["time"]),
                        values["resident_or_device"],
                        values["kind"],
                        values["value"],
                    )
                )
            except (ValueError, KeyError) as err:
                errors.append(f"line {n}: bad time or missing column ({err})")
    return rows, errors


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false, 1/0, open/closed, on/off)")


class Replayer:
    def __init__(self, world: World) -> None:
        self.world = world
        self.by_id: dict[str, SimDevice] = {}
        self.by_native: dict[str, SimDevice] = {}
        self.by_resident: dict[str, list[SimDevice]] = {}
        for site in world.sites:
            for dev in site.devices:
                self.by_id[dev.id] = dev
                self.by_native[dev.native_id] = dev
                if dev.resident_id:
                    self.by_resident.setdefault(dev.resident_id, []).append(dev)
        self.band_state: dict[str, dict[str, object]] = {}

    def _device_for(self, subject: str, kind: str) -> SimDevice:
        dev = self.by_id.get(subject) or self.by_native.get(subject)
        if dev is not None:
            return dev
        own = self.by_resident.get(subject)
        if own is None:
            raise ValueError(f"{subject!r} is not a resident, device id or native id")
        wanted = {
            "bed_occupancy": ("bed_sensor",),
            "respiratory_rate": ("bed_sensor",),
            "sos": ("wearable", "sos_button"),
            "button": ("sos_button",),
        }.get(kind, ("wearable", "bed_sensor"))
        for dtype in wanted:
            for d in own:
                if d.type == dtype:
                    return d
        raise ValueError(f"resident {subject} has no device for {kind}")

    def messages(self, row: Row, shift_ms: int) -> list[Msg]:
        msg = self.message(row, shift_ms)
        dev = self._device_for(row.subject, row.kind)
        if dev.ha and msg[1] == dev.topic:
            return [(msg[0], t, v, False) for t, v in formats.ha_states(dev.ha, json.loads(msg[2]))]
        return [msg]

    def message(self, row: Row, shift_ms: int) -> Msg:
        dev = self._device_for(row.subject, row.kind)
        site = self.world.site_by_id[dev.site_id]
        t = row.t_ms + shift_ms
        kind, value = row.kind, row.value
        if kind == "availability":
            online = _bool(value)
            if dev.family.value == "zigbee2mqtt":
                return (t, dev.avail_topic, formats.z2m_availability(online, site.z2m_v2), True)
            if dev.family.value == "homeassistant":
                return (t, dev.avail_topic, "online" if online else "offline", True)
            return (t, dev.avail_topic, "online" if online else "offline", True)
        if dev.type == "wearable":
            return self._band(dev, t, kind, value)
        if dev.type == "bed_sensor":
            state = self.band_state.setdefault(dev.id, {"occupied": True})
            if kind == "bed_occupancy":
                state["occupied"] = _bool(value)
            elif kind == "heart_rate":
                state["hr"] = int(float(value))
            elif kind == "respiratory_rate":
                state["rr"] = int(float(value))
            else:
                raise ValueError(f"a bed mat does not report {kind}")
            hr, rr = state.get("hr"), state.get("rr")
            bed: dict[str, object] = {"ts": iso_local(t), "occupied": bool(state["occupied"])}
            if state["occupied"]:
                bed.update({k: v for k, v in (("hr", hr), ("rr", rr)) if v is not None})
                bed["movement"] = 1
            return (t, dev.topic, formats.dumps(bed), False)
        body: dict[str, object] = {}
        if kind == "motion" and dev.type == "motion_sensor":
            body["occupancy"] = _bool(value)
        elif kind == "door" and dev.type == "door_sensor":
            body["contact"] = not _bool(value)
        elif kind in ("room_temperature", "humidity") and dev.type.startswith("temperature"):
            body["temperature" if kind == "room_temperature" else "humidity"] = float(value)
        elif kind in ZIGBEE_BOOL and dev.type == ZIGBEE_BOOL[kind][0]:
            body[ZIGBEE_BOOL[kind][1]] = _bool(value)
        elif kind in ("sos", "button") and dev.type == "sos_button":
            if kind == "sos":
                body["action"] = "emergency" if "TuYa" in dev.model else "single"
            else:
                body["action"] = value or "single"
        elif kind == "battery" and dev.family.value in ("zigbee2mqtt", "homeassistant"):
            body["battery"] = int(float(value))
        else:
            raise ValueError(f"device {dev.id} ({dev.type}) does not report {kind}")
        body["linkquality"] = dev.linkquality
        return (t, dev.topic, formats.dumps(body), False)

    def _band(self, dev: SimDevice, t: int, kind: str, value: str) -> Msg:
        state = self.band_state.setdefault(dev.id, {"battery": 80, "worn": True, "steps": 0})
        base = dev.topic.rsplit("/", 1)[0]
        if kind in ("fall", "sos"):
            if not _bool(value):
                raise ValueError(f"{kind} value must be true to raise the band's alarm")
            return (t, base + "/alarm", formats.band_alarm(dev.native_id, t, kind, 1.0), False)
        vitals: dict[str, float | int | None] = {}
        if kind == "worn":
            state["worn"] = _bool(value)
        elif kind == "battery":
            state["battery"] = int(float(value))
        elif kind == "steps":
            state["steps"] = int(float(value))
        elif kind in BAND_FIELDS:
            vitals[BAND_FIELDS[kind]] = float(value)
        else:
            raise ValueError(f"a band does not report {kind}")
        hr = vitals.get("hr")
        spo2 = vitals.get("spo2")
        skin = vitals.get("skin_temp")
        payload = formats.band_telemetry(
            dev.native_id,
            t,
            int(state["battery"]),  # type: ignore[call-overload]
            bool(state["worn"]),
            int(state["steps"]),  # type: ignore[call-overload]
            hr=round(hr) if hr is not None else None,
            spo2=round(spo2) if spo2 is not None else None,
            skin_temp=round(float(skin), 1) if skin is not None else None,
        )
        return (t, dev.topic, payload, False)


def build_replay(world: World, rows: Iterable[Row], *, start_ms: int | None = None) -> ReplayResult:
    """Native messages for ``rows``; with ``start_ms`` the first row is moved to it."""
    ordered = sorted(rows, key=lambda r: (r.t_ms, r.line))
    shift = 0
    if start_ms is not None and ordered:
        shift = start_ms - ordered[0].t_ms
    rep = Replayer(world)
    msgs: list[Msg] = []
    errors: list[str] = []
    for row in ordered:
        try:
            msgs.extend(rep.messages(row, shift))
        except ValueError as err:
            errors.append(f"line {row.line}: {err}")
    return ReplayResult(msgs, errors, len(ordered))
