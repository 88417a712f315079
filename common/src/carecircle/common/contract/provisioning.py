"""A provisioning document: places, sites, people and devices to load into the platform.

The simulator writes one for its population (``carecircle sim population``); the
platform loads it (``carecircle platform provision``) and then pushes each gateway its
:class:`~carecircle.common.contract.config.GatewayConfig`.  Integrators can write one by
hand for a real deployment.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from carecircle.common.contract.config import DeviceBinding
from carecircle.common.contract.envelope import Ident

PlaceLevel = Literal["prefecture", "county", "township", "village"]
SiteKind = Literal["household", "nursing_home", "day_care", "community_station", "meal_point"]
RoomKind = Literal[
    "bedroom",
    "bathroom",
    "toilet",
    "kitchen",
    "living_room",
    "entrance",
    "corridor",
    "dining",
    "activity",
    "other",
]
Lat = Field(ge=-90, le=90)
Lon = Field(ge=-180, le=180)


#: ``care_profile`` key: the usual getting-up time recorded at the intake assessment
#: (what the resident or the family says, "HH:MM" local time, e.g. ``"06:30"``); the
#: missed wake-up check's window until the resident's own rises are learned
#: (docs/alerts.md, "Missed wake-up: a window per resident").
USUAL_WAKE_KEY = "usual_wake_time"
#: A stated getting-up time outside this range is refused as a slip (18:30 for 06:30).
USUAL_WAKE_EARLIEST = time(3, 0)
USUAL_WAKE_LATEST = time(13, 0)
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_usual_wake(value: object) -> time:
    """A stated usual wake-up time (``"HH:MM"``, 03:00–13:00); ``ValueError`` otherwise."""
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{USUAL_WAKE_KEY} must be a local time as HH:MM, got {value!r}")
    t = time(int(m.group(1)), int(m.group(2)))
    if not USUAL_WAKE_EARLIEST <= t <= USUAL_WAKE_LATEST:
        raise ValueError(
            f"{USUAL_WAKE_KEY} {value} is not a plausible getting-up time "
            f"({USUAL_WAKE_EARLIEST:%H:%M}–{USUAL_WAKE_LATEST:%H:%M})"
        )
    return t


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlaceSpec(_Spec):
    id: Ident
    parent_id: Ident | None = None
    level: PlaceLevel
    name: str
    division_code: str | None = None
    lat: float | None = Lat
    lon: float | None = Lon


class SiteSpec(_Spec):
    id: Ident
    kind: SiteKind
    place_id: Ident
    name: str
    address: str | None = None
    lat: float = Lat
    lon: float = Lon
    capacity: int | None = Field(default=None, gt=0)


class RoomSpec(_Spec):
    id: Ident
    site_id: Ident
    kind: RoomKind
    name: str


class ResidentSpec(_Spec):
    id: Ident
    site_id: Ident
    room_id: Ident | None = None
    day_care_site_id: Ident | None = None
    display_name: str
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    lives_alone: bool = False
    care_level: Literal["independent", "assisted", "dependent"] = "independent"
    #: e.g. dementia, hypertension, diabetes, limited_mobility, copd, heart_disease
    conditions: list[str] = Field(default_factory=list)
    #: Free-form care notes and per-resident overrides (``missed_wakeup``: rule fields);
    #: ``usual_wake_time`` is checked (:func:`parse_usual_wake`).
    care_profile: dict[str, Any] = Field(default_factory=dict)

    @field_validator("care_profile")
    @classmethod
    def _usual_wake(cls, v: dict[str, Any]) -> dict[str, Any]:
        if v.get(USUAL_WAKE_KEY) is not None:
            parse_usual_wake(v[USUAL_WAKE_KEY])
        return v


class GatewaySpec(_Spec):
    id: Ident
    site_id: Ident


class DeviceSpec(_Spec):
    gateway_id: Ident
    binding: DeviceBinding
    model: str | None = None


class ResponderSpec(_Spec):
    id: Ident
    display_name: str
    kind: Literal["volunteer", "care_worker", "facility_staff", "family", "doctor"]
    place_id: Ident | None = None
    site_id: Ident | None = None
    lat: float = Lat
    lon: float = Lon
    travel_mode: Literal["walk", "ebike", "car"] = "walk"
    #: first_aid, nursing, can_lift
    skills: list[str] = Field(default_factory=list)
    availability: Literal["on_duty", "off_duty", "busy"] = "off_duty"
    #: Places (villages/townships) this responder covers.
    covers: list[Ident] = Field(default_factory=list)
    phone: str | None = None
    #: Weekly shifts, e.g. ``[{"days": [0,1,2,3,4], "start": "08:00", "end": "18:00"}]``.
    shifts: list[dict[str, Any]] = Field(default_factory=list)


class FamilyLinkSpec(_Spec):
    resident_id: Ident
    relationship: str = "family"
    consent: dict[str, bool] = Field(
        default_factory=lambda: {
            "alerts": True,
            "daily_summary": True,
            "vitals": False,
            "location": False,
        }
    )


class FamilyMemberSpec(_Spec):
    id: Ident
    display_name: str
    phone: str | None = None
    links: list[FamilyLinkSpec] = Field(default_factory=list)


class Provisioning(_Spec):
    v: Literal[1] = 1
    places: list[PlaceSpec] = Field(default_factory=list)
    sites: list[SiteSpec] = Field(default_factory=list)
    rooms: list[RoomSpec] = Field(default_factory=list)
    residents: list[ResidentSpec] = Field(default_factory=list)
    gateways: list[GatewaySpec] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)
    responders: list[ResponderSpec] = Field(default_factory=list)
    family_members: list[FamilyMemberSpec] = Field(default_factory=list)
