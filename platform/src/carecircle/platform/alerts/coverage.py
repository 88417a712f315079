"""Monitoring coverage: which detections a resident's installed devices can support.

Alerts are only as good as the devices that feed them: a resident without a band has
no heart-rate alert, a home without a smoke detector no smoke alert, and a resident
with no device of her own who lives with a partner cannot be judged for inactivity
(the shared sensors see him; docs/alerts.md, "Housemates").  This module says so per
resident and per detection kind, before an incident does:

* ``watched`` — the devices the rules read are installed (and working now);
* ``partial`` — something feeds the rule, with a known blind spot (``why``; ``fix``
  says what would close it), e.g. falls seen by the band's alarm only (~80 %);
* ``not_watched`` — no installed device can make the rule fire for her (``why`` and
  ``fix``);
* ``off`` — the effective rule is switched off for her (a decision, not a gap).

Pure: typed inputs (the resident, the devices of her site, how many others live
there, which rooms are someone's own room) and ``now`` in, a
:class:`ResidentMonitoring` out.  The attribution of devices is the rules' own: her
devices, plus the site's shared sensors except those in another resident's own room
(:func:`counts_for`, as :func:`.store.activity_entries`); housemates are the other
residents of the site (as :func:`.jobs.run_absence_checks`), and only a band of her
own lets the absence checks judge her apart from them
(:meth:`.detectors.absence.ActivitySummary.personal`).  A device that is offline now
(the rules' :func:`~.detectors.absence.device_offline`, or behind an offline
gateway) feeds nothing: each detection is judged with every installed device and
with the working ones, and reported as it stands now, with what it would be once
the silent devices are back (``installed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any, Final

from carecircle.common.contract import MOTION_TYPES, SOS_TYPES, Code, DeviceFamily
from carecircle.platform.alerts.config import (
    DeviceOfflineRule,
    InactivityRule,
    MissedWakeupRule,
    NightWanderingRule,
    RuleBook,
    RuleInvalid,
    _Rule,
)
from carecircle.platform.alerts.context import ResidentCtx
from carecircle.platform.alerts.detectors.absence import DeviceState, device_offline
from carecircle.platform.alerts.kinds import AlertKind

K = AlertKind


class Watch(StrEnum):
    WATCHED = "watched"
    PARTIAL = "partial"
    NOT_WATCHED = "not_watched"
    OFF = "off"


#: Worst first: how a detection's status ranks when summarised.
_RANK: Final[dict[Watch, int]] = {
    Watch.NOT_WATCHED: 0,
    Watch.PARTIAL: 1,
    Watch.WATCHED: 2,
    Watch.OFF: 3,
}

#: The detections reported, in the order of the report (the rule kinds about a person
#: or a home; technical and model kinds follow from these devices).
KINDS: Final[tuple[AlertKind, ...]] = (
    K.SOS,
    K.FALL,
    K.SMOKE,
    K.GAS,
    K.CARBON_MONOXIDE,
    K.WATER_LEAK,
    K.TACHYCARDIA,
    K.BRADYCARDIA,
    K.LOW_SPO2,
    K.FEVER,
    K.COLD_ROOM,
    K.HEAT,
    K.PROLONGED_INACTIVITY,
    K.MISSED_WAKEUP,
    K.NIGHT_WANDERING,
    K.BED_EXIT_NOT_RETURNED,
)

#: The radar fall sensor (HEIMAN HS2FD): ``fall_status`` → ``fall``; its occupancy is
#: a presence type's (``PRESENCE_TYPES``: ``bathroom_presence`` in a bathroom, else
#: ``motion``), counted as ``motion`` here like every presence sensor's.
RADAR_FALL_TYPE: Final = "radar_fall_sensor"
#: Sensitivity of the band's fall alarm (field notes; docs/alerts.md, "Session 5").
BAND_FALL_SENSITIVITY: Final = "~80 %"

#: The codes each device family reports whatever its type (a band, a bed mat).
FAMILY_CODES: Final[dict[str, frozenset[Code]]] = {
    DeviceFamily.WEARABLE.value: frozenset(
        {Code.HEART_RATE, Code.SPO2, Code.SKIN_TEMPERATURE, Code.STEPS, Code.FALL, Code.SOS}
    ),
    DeviceFamily.BED_SENSOR.value: frozenset(
        {Code.BED_OCCUPANCY, Code.HEART_RATE, Code.RESPIRATORY_RATE}
    ),
}
#: The codes a zigbee/Home Assistant device of each provisioned type reports (the
#: gateway adapters' mapping, docs/contract.md).  A type not listed counts for nothing.
TYPE_CODES: Final[dict[str, frozenset[Code]]] = {
    **{t: frozenset({Code.MOTION}) for t in MOTION_TYPES},
    **{t: frozenset({Code.SOS}) for t in SOS_TYPES},
    RADAR_FALL_TYPE: frozenset({Code.FALL, Code.MOTION}),
    "door_sensor": frozenset({Code.DOOR}),
    "smoke_detector": frozenset({Code.SMOKE}),
    "gas_detector": frozenset({Code.GAS}),
    "co_detector": frozenset({Code.CARBON_MONOXIDE}),
    "water_leak_sensor": frozenset({Code.WATER_LEAK}),
    "temperature_humidity_sensor": frozenset({Code.ROOM_TEMPERATURE, Code.HUMIDITY}),
}
_BATHROOMS: Final = frozenset({"bathroom", "toilet"})
_HAZARDS: Final[dict[AlertKind, tuple[Code, str, str]]] = {
    K.SMOKE: (Code.SMOKE, "smoke detector", "a smoke detector"),
    K.GAS: (Code.GAS, "gas detector", "a gas detector (where the home has a gas supply)"),
    K.CARBON_MONOXIDE: (Code.CARBON_MONOXIDE, "CO detector", "a CO detector"),
    K.WATER_LEAK: (Code.WATER_LEAK, "water leak sensor", "a water leak sensor"),
}


@dataclass(frozen=True)
class MonitoredDevice:
    """One installed (not retired) device of a site, as the coverage report needs it."""

    id: str
    site_id: str
    type: str
    family: str
    resident_id: str | None = None
    room_id: str | None = None
    room_kind: str | None = None
    status: str = "unknown"
    last_seen: datetime | None = None
    power: str = "battery"
    offline_timeout_s: int = 3600
    gateway_id: str = ""
    #: Its gateway is offline now (the rules' ``gateway_offline``): it can send nothing.
    gateway_down: bool = False

    def codes(self) -> frozenset[Code]:
        return FAMILY_CODES.get(self.family) or TYPE_CODES.get(self.type, frozenset())

    @property
    def is_band(self) -> bool:
        return self.family == DeviceFamily.WEARABLE.value

    def state(self) -> DeviceState:
        return DeviceState(
            self.id,
            self.site_id,
            self.gateway_id,
            self.resident_id,
            self.power,
            self.offline_timeout_s,
            self.status,
            self.last_seen,
            None,
            self.type,
        )

    def label(self) -> str:
        return f"{self.type} in {self.room_kind}" if self.room_kind else self.type


@dataclass(frozen=True)
class MonitoredResident:
    """A resident and her home's facts: her own room (nursing homes) and housemates."""

    ctx: ResidentCtx
    room_id: str | None = None
    #: Other residents of the site, whose movements the shared sensors also see.
    housemates: int = 0


@dataclass(frozen=True)
class Detection:
    kind: AlertKind
    status: Watch
    why: str
    #: What an administrator would install or repair to close the gap (``None``: nothing).
    fix: str | None = None
    #: The working devices this detection relies on.
    devices: tuple[str, ...] = ()
    #: Devices that would feed it but are offline now.
    offline: tuple[str, ...] = ()
    #: The status with every installed device working.
    installed: Watch = Watch.WATCHED

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "status": self.status.value,
            "installed": self.installed.value,
            "why": self.why,
            "fix": self.fix,
            "devices": list(self.devices),
            "offline": list(self.offline),
        }


@dataclass(frozen=True)
class ResidentMonitoring:
    resident_id: str
    site_id: str
    housemates: int
    detections: tuple[Detection, ...]
    #: Devices of types the report does not know (counted for nothing).
    unknown_types: tuple[str, ...] = ()

    def status(self, kind: AlertKind) -> Watch:
        return next(d.status for d in self.detections if d.kind is kind)

    def gaps(self) -> list[Detection]:
        return [d for d in self.detections if d.status in (Watch.NOT_WATCHED, Watch.PARTIAL)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "resident_id": self.resident_id,
            "site_id": self.site_id,
            "housemates": self.housemates,
            "detections": [d.as_dict() for d in self.detections],
            "unknown_types": list(self.unknown_types),
        }


def counts_for(resident: MonitoredResident, dev: MonitoredDevice, own_rooms: Iterable[str]) -> bool:
    """Does the device feed this resident's rules?  Her own devices; the site's shared
    ones, except a sensor in a room that is another resident's own room (nursing homes):
    the rules' attribution (:func:`.store.activity_entries`)."""
    if dev.site_id != resident.ctx.site_id:
        return False
    if dev.resident_id is not None:
        return dev.resident_id == resident.ctx.id
    if dev.room_id is None or dev.room_id == resident.room_id:
        return True
    return dev.room_id not in set(own_rooms)


def working(dev: MonitoredDevice, rule: DeviceOfflineRule, now: datetime) -> bool:
    """Not offline now by the rules' device check, and its gateway is up."""
    return not dev.gateway_down and not device_offline(dev.state(), rule, now)


# --- the judgements, one per kind ------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """What feeds one resident's rules: her devices and the shared ones counted for her."""

    resident: MonitoredResident
    own: tuple[MonitoredDevice, ...]
    shared: tuple[MonitoredDevice, ...]
    #: Every device of the site (home hazards raise a site alert whoever's device it is).
    site: tuple[MonitoredDevice, ...]

    def mine(self, code: Code) -> list[MonitoredDevice]:
        return [d for d in self.own if code in d.codes()]

    def any(self, code: Code) -> list[MonitoredDevice]:
        return [d for d in (*self.own, *self.shared) if code in d.codes()]

    def band(self) -> list[MonitoredDevice]:
        return [d for d in self.own if d.is_band]


@dataclass(frozen=True)
class _Verdict:
    status: Watch
    why: str
    fix: str | None = None
    devices: tuple[MonitoredDevice, ...] = ()


def _ids(devs: Iterable[MonitoredDevice]) -> tuple[MonitoredDevice, ...]:
    return tuple(sorted(set(devs), key=lambda d: d.id))


def _labels(devs: Iterable[MonitoredDevice]) -> str:
    return ", ".join(sorted({d.label() for d in devs}))


def _housemates(n: int) -> str:
    return "1 other resident" if n == 1 else f"{n} other residents"


def _sos(v: _View, rule: _Rule) -> _Verdict:
    src = v.any(Code.SOS)
    if src:
        return _Verdict(Watch.WATCHED, f"SOS: {_labels(src)}", devices=_ids(src))
    theirs = [d for d in v.site if Code.SOS in d.codes() and not d.is_band and d.resident_id]
    if theirs:
        return _Verdict(
            Watch.PARTIAL,
            f"only a housemate's SOS button ({_labels(theirs)}): a press raises an alert "
            "that names the housemate",
            "an SOS button of their own (or a band, which has one)",
            _ids(theirs),
        )
    return _Verdict(
        Watch.NOT_WATCHED,
        "no SOS button of the resident's or shared in the home, and no band",
        "an SOS button (or a band, which has one)",
    )


def _fall(v: _View, rule: _Rule) -> _Verdict:
    bands = [d for d in v.mine(Code.FALL) if d.is_band]
    radars = [d for d in v.any(Code.FALL) if not d.is_band]
    sos = v.any(Code.SOS)
    where = ", ".join(sorted({d.room_kind or "unknown room" for d in radars}))
    if bands and radars:
        return _Verdict(
            Watch.WATCHED,
            f"band fall alarm ({BAND_FALL_SENSITIVITY} of falls) and a radar fall sensor "
            f"in {where}",
            devices=_ids([*bands, *radars]),
        )
    if bands:
        return _Verdict(
            Watch.PARTIAL,
            f"band fall alarm only ({BAND_FALL_SENSITIVITY} of falls; the rest only by an "
            "SOS press)",
            "a radar fall sensor (HS2FD) in the bathroom",
            _ids(bands),
        )
    if radars:
        return _Verdict(
            Watch.PARTIAL,
            f"radar fall sensor in {where} only; a fall elsewhere only if SOS is pressed",
            "a band (fall alarm)",
            _ids(radars),
        )
    if sos:
        return _Verdict(
            Watch.NOT_WATCHED,
            "no fall detector: only an SOS press, if the resident can make one",
            "a band (fall alarm) or a radar fall sensor (HS2FD) in the bathroom",
            _ids(sos),
        )
    return _Verdict(
        Watch.NOT_WATCHED,
        "no fall detector and no SOS button",
        "a band (fall alarm) or a radar fall sensor (HS2FD) in the bathroom",
    )


def _hazard(kind: AlertKind) -> Any:
    code, noun, device = _HAZARDS[kind]

    def judge(v: _View, rule: _Rule) -> _Verdict:
        src = [d for d in v.site if code in d.codes()]
        if src:
            return _Verdict(Watch.WATCHED, f"{_labels(src)} in the home", devices=_ids(src))
        return _Verdict(Watch.NOT_WATCHED, f"no {noun} in the home", device)

    return judge


def _heart(v: _View, rule: _Rule) -> _Verdict:
    bands = [d for d in v.mine(Code.HEART_RATE) if d.is_band]
    if bands:
        return _Verdict(Watch.WATCHED, "heart rate from the resident's band", devices=_ids(bands))
    beds = v.mine(Code.HEART_RATE)
    if beds:
        return _Verdict(
            Watch.PARTIAL,
            "heart rate from the resident's bed mat only: while in bed",
            "a band",
            _ids(beds),
        )
    return _Verdict(
        Watch.NOT_WATCHED, "no band or bed mat of the resident's measures heart rate", "a band"
    )


def _band_signal(code: Code, what: str) -> Any:
    def judge(v: _View, rule: _Rule) -> _Verdict:
        src = v.mine(code)
        if src:
            return _Verdict(Watch.WATCHED, f"{what} from the resident's band", devices=_ids(src))
        return _Verdict(Watch.NOT_WATCHED, f"no band of the resident's measures {what}", "a band")

    return judge


def _fever(v: _View, rule: _Rule) -> _Verdict:
    body = v.mine(Code.BODY_TEMPERATURE)
    skin = v.mine(Code.SKIN_TEMPERATURE)
    if body or skin:
        why = (
            "body temperature"
            if body
            else "band skin temperature against the wearer's own median of the last day "
            "(needs a day of wear)"
        )
        return _Verdict(Watch.WATCHED, why, devices=_ids([*body, *skin]))
    return _Verdict(Watch.NOT_WATCHED, "no band of the resident's measures temperature", "a band")


def _climate(v: _View, rule: _Rule) -> _Verdict:
    src = v.any(Code.ROOM_TEMPERATURE)
    if src:
        return _Verdict(Watch.WATCHED, f"room temperature: {_labels(src)}", devices=_ids(src))
    return _Verdict(
        Watch.NOT_WATCHED,
        "no room temperature sensor in the home or the resident's room",
        "a temperature sensor in the bedroom or living room",
    )


_ACTIVITY: Final = frozenset({Code.MOTION, Code.BATHROOM_PRESENCE, Code.DOOR, Code.BED_OCCUPANCY})


def _not_apart(v: _View, what: str) -> _Verdict:
    """A resident with housemates and no band of her own: the rule reads the shared
    sensors, which see the others too (``ActivitySummary.personal`` is false)."""
    n = v.resident.housemates
    bed = (
        " (a bed mat alone does not switch the checks to own devices)"
        if v.mine(Code.BED_OCCUPANCY)
        else ""
    )
    return _Verdict(
        Watch.NOT_WATCHED,
        f"lives with {_housemates(n)} and no band of their own is reporting: the shared "
        f"sensors see the others too, so the resident's {what} cannot be seen{bed}",
        "a band for this resident (the checks then judge them on their own steps and bed)",
    )


def _apart(v: _View, what: str) -> _Verdict:
    n = v.resident.housemates
    bands = v.band()
    return _Verdict(
        Watch.WATCHED,
        f"judged on their own band while it is worn (lives with {_housemates(n)}); with the "
        f"band off the wrist the shared sensors decide and their {what} is hidden",
        devices=_ids([*bands, *v.mine(Code.BED_OCCUPANCY)]),
    )


def _inactivity(v: _View, rule: _Rule) -> _Verdict:
    if v.resident.housemates > 0:
        return _apart(v, "inactivity") if v.band() else _not_apart(v, "inactivity")
    motion = v.any(Code.MOTION)  # motion and presence sensors, radars
    bath = [d for d in motion if d.room_kind in _BATHROOMS]
    others = v.any(Code.STEPS) + [
        d for d in (*v.own, *v.shared) if d.codes() & _ACTIVITY and d not in motion
    ]
    if motion and bath:
        return _Verdict(
            Watch.WATCHED, f"activity: {_labels(motion)}", devices=_ids([*motion, *others])
        )
    if motion:
        assert isinstance(rule, InactivityRule)
        noon = time(12)
        return _Verdict(
            Watch.PARTIAL,
            f"no sensor in the bathroom: a collapse there is judged by the limit of the "
            f"last room seen ({rule.limit_for(None, noon) / 3600:g} h by day, not "
            f"{rule.limit_for('bathroom', noon) / 3600:g} h)",
            "a motion or presence sensor in the bathroom",
            _ids([*motion, *others]),
        )
    if others:
        return _Verdict(
            Watch.PARTIAL,
            f"no motion sensor: only {_labels(others)} (nothing while a band is off the "
            "wrist or charging; the room of the last activity unknown)",
            "motion sensors in the living room and the bathroom",
            _ids(others),
        )
    return _Verdict(
        Watch.NOT_WATCHED,
        "no motion sensor, band or bed mat counts for the resident",
        "motion sensors in the living room and the bathroom",
    )


def _wakeup(v: _View, rule: _Rule) -> _Verdict:
    if v.resident.housemates > 0:
        return _apart(v, "missed wake-up") if v.band() else _not_apart(v, "missed wake-up")
    assert isinstance(rule, MissedWakeupRule)

    def counted(d: MonitoredDevice) -> bool:
        codes = d.codes()
        if Code.BED_OCCUPANCY in codes and rule.count_bed_exit:
            return True
        if not codes & {Code.MOTION, Code.BATHROOM_PRESENCE, Code.STEPS}:
            return False
        room = None if d.is_band else d.room_kind
        return room != "bedroom" if rule.rooms is None else room in rule.rooms

    src = [d for d in (*v.own, *v.shared) if counted(d)]
    if src:
        return _Verdict(Watch.WATCHED, f"getting up seen by {_labels(src)}", devices=_ids(src))
    bedroom = [d for d in v.any(Code.MOTION) if d.room_kind == "bedroom"]
    why = (
        "only a bedroom sensor: getting up is seen outside the bedroom"
        if bedroom
        else "nothing counts as getting up for the resident"
    )
    return _Verdict(
        Watch.NOT_WATCHED,
        why,
        "a motion sensor outside the bedroom (bathroom, kitchen, living room) or a bed mat",
    )


def _night_door(v: _View, rule: _Rule) -> _Verdict:
    assert isinstance(rule, NightWanderingRule)
    doors = v.any(Code.DOOR)
    watched = [d for d in doors if d.room_kind in rule.rooms]
    if watched:
        note = (
            f"; shared with {_housemates(v.resident.housemates)}, an opening is a household "
            "alert (who went out is not known)"
            if v.resident.housemates and all(d.resident_id is None for d in watched)
            else ""
        )
        return _Verdict(Watch.WATCHED, f"{_labels(watched)}{note}", devices=_ids(watched))
    rooms = "/".join(rule.rooms)
    why = (
        f"door sensors ({_labels(doors)}) but none in a watched room ({rooms})"
        if doors
        else "no door sensor"
    )
    return _Verdict(Watch.NOT_WATCHED, why, f"a door sensor on the front door (room kind {rooms})")


def _bed_exit(v: _View, rule: _Rule) -> _Verdict:
    own = v.mine(Code.BED_OCCUPANCY)
    if own:
        return _Verdict(Watch.WATCHED, "the resident's own bed mat", devices=_ids(own))
    shared = v.any(Code.BED_OCCUPANCY)
    if shared:
        return _Verdict(
            Watch.PARTIAL,
            "a bed sensor not bound to the resident: whoever's bed it is counts",
            "bind the bed sensor to the resident (devices.resident_id)",
            _ids(shared),
        )
    return _Verdict(Watch.NOT_WATCHED, "no bed sensor", "a bed sensor (mat) bound to the resident")


_JUDGES: Final[dict[AlertKind, Any]] = {
    K.SOS: _sos,
    K.FALL: _fall,
    **{k: _hazard(k) for k in _HAZARDS},
    K.TACHYCARDIA: _heart,
    K.BRADYCARDIA: _heart,
    K.LOW_SPO2: _band_signal(Code.SPO2, "oxygen saturation"),
    K.FEVER: _fever,
    K.COLD_ROOM: _climate,
    K.HEAT: _climate,
    K.PROLONGED_INACTIVITY: _inactivity,
    K.MISSED_WAKEUP: _wakeup,
    K.NIGHT_WANDERING: _night_door,
    K.BED_EXIT_NOT_RETURNED: _bed_exit,
}
assert set(_JUDGES) == set(KINDS)


def assess(
    resident: MonitoredResident,
    devices: Sequence[MonitoredDevice],
    now: datetime,
    *,
    own_rooms: Iterable[str] = (),
    book: RuleBook | None = None,
) -> ResidentMonitoring:
    """Each detection of :data:`KINDS` for one resident.

    ``devices``: the installed devices of her site; ``own_rooms``: rooms that are some
    resident's own room there (``residents.room_id``); ``book``: the stored rules (a
    kind switched off for her is ``off``; built-in defaults without one).
    """
    book = book or RuleBook([])
    where = resident.ctx.where()
    rooms = frozenset(own_rooms)
    mine = [d for d in devices if counts_for(resident, d, rooms)]
    site = [d for d in devices if d.site_id == resident.ctx.site_id]
    try:
        health = _rule(book, K.DEVICE_OFFLINE, where)
    except RuleInvalid:
        health = None
    offline_rule = health if isinstance(health, DeviceOfflineRule) else DeviceOfflineRule()
    up = {d.id for d in site if working(d, offline_rule, now)}
    rid = resident.ctx.id

    def view(only_up: bool) -> _View:
        def keep(d: MonitoredDevice) -> bool:
            return not only_up or d.id in up

        return _View(
            resident,
            tuple(d for d in mine if d.resident_id == rid and keep(d)),
            tuple(d for d in mine if d.resident_id is None and keep(d)),
            tuple(d for d in site if keep(d)),
        )

    full, now_view = view(False), view(True)
    out = []
    for kind in KINDS:
        try:
            rule = _rule(book, kind, where)
        except RuleInvalid:
            out.append(Detection(kind, Watch.OFF, "stored rule is invalid (the checks skip it)"))
            continue
        if rule is None:
            out.append(
                Detection(
                    kind, Watch.OFF, "rule switched off for this resident", installed=Watch.OFF
                )
            )
            continue
        judge = _JUDGES[kind]
        ideal: _Verdict = judge(full, rule)
        real: _Verdict = judge(now_view, rule)
        down = tuple(d.id for d in ideal.devices if d.id not in up)
        why, fix = real.why, real.fix
        if down:
            silent = _labels(d for d in ideal.devices if d.id not in up)
            why = f"{why}; offline now: {silent} ({', '.join(down)})"
            if _RANK[real.status] < _RANK[ideal.status]:
                fix = f"bring back online: {', '.join(down)}"
        out.append(
            Detection(
                kind,
                real.status,
                why,
                fix,
                tuple(d.id for d in real.devices),
                down,
                ideal.status,
            )
        )
    unknown = tuple(sorted({d.type for d in mine if not d.codes()}))
    return ResidentMonitoring(rid, resident.ctx.site_id, resident.housemates, tuple(out), unknown)


def _rule(book: RuleBook, kind: AlertKind, where: Mapping[str, Any]) -> _Rule | None:
    """The effective rule (``None``: switched off); raises ``RuleInvalid``."""
    return book.rule(kind, **where)


def assess_site(
    residents: Sequence[MonitoredResident],
    devices: Sequence[MonitoredDevice],
    now: datetime,
    *,
    book: RuleBook | None = None,
) -> list[ResidentMonitoring]:
    """Every resident of one or more sites; housemates and own rooms from the residents
    given (the whole site, as the rules count them)."""
    per_site = Counter(r.ctx.site_id for r in residents)
    own_rooms: dict[str, set[str]] = {}
    for r in residents:
        if r.room_id is not None:
            own_rooms.setdefault(r.ctx.site_id, set()).add(r.room_id)
    by_site: dict[str, list[MonitoredDevice]] = {}
    for d in devices:
        by_site.setdefault(d.site_id, []).append(d)
    out = []
    for r in residents:
        fixed = MonitoredResident(r.ctx, r.room_id, per_site[r.ctx.site_id] - 1)
        out.append(
            assess(
                fixed,
                by_site.get(r.ctx.site_id, []),
                now,
                own_rooms=own_rooms.get(r.ctx.site_id, ()),
                book=book,
            )
        )
    return out


# --- summaries --------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """How many residents of a site or township each detection misses."""

    level: str  # site | township
    id: str
    residents: int
    not_watched: dict[str, int] = field(default_factory=dict)
    partial: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarise(
    results: Sequence[ResidentMonitoring], township_of: Mapping[str, str | None]
) -> list[GroupSummary]:
    """Per site and per township (``township_of``: site → township id), the number of
    residents each kind leaves ``not_watched`` and ``partial`` (kinds with none left out)."""
    groups: dict[tuple[str, str], list[ResidentMonitoring]] = {}
    for r in results:
        groups.setdefault(("site", r.site_id), []).append(r)
        township = township_of.get(r.site_id)
        if township:
            groups.setdefault(("township", township), []).append(r)
    out = []
    for (level, gid), members in sorted(
        groups.items(), key=lambda g: (g[0][0] != "township", g[0])
    ):
        nw: Counter[str] = Counter()
        pa: Counter[str] = Counter()
        for m in members:
            for d in m.detections:
                if d.status is Watch.NOT_WATCHED:
                    nw[d.kind.value] += 1
                elif d.status is Watch.PARTIAL:
                    pa[d.kind.value] += 1
        order = [k.value for k in KINDS]
        out.append(
            GroupSummary(
                level,
                gid,
                len(members),
                {k: nw[k] for k in order if nw[k]},
                {k: pa[k] for k in order if pa[k]},
            )
        )
    return out


__all__ = [
    "KINDS",
    "Detection",
    "GroupSummary",
    "MonitoredDevice",
    "MonitoredResident",
    "ResidentMonitoring",
    "Watch",
    "assess",
    "assess_site",
    "counts_for",
    "summarise",
]
