"""Response and request bodies of the API (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from carecircle.common.contract.envelope import Ident

Level = Literal["prefecture", "county", "township", "village"]
SiteKind = Literal["household", "nursing_home", "day_care", "community_station", "meal_point"]
Health = Literal["online", "offline", "unknown"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TokenOut(_Out):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int
    refresh_token: str


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=256)


class MeOut(_Out):
    id: str
    username: str
    role: str
    display_name: str
    locale: str
    place_id: str | None
    site_id: str | None
    responder_id: str | None
    family_member_id: str | None
    actions: list[str]


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    #: ``read``, ``alerts:write``, ``fhir`` or single action names such as ``alert.read``.
    scopes: list[str] = Field(min_length=1, max_length=20)
    expires_at: datetime | None = None


class ApiKeyOut(_Out):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    #: The key itself: shown once, stored only as a hash.
    key: str


class PlaceOut(_Out):
    id: str
    parent_id: str | None
    level: Level
    name: str
    division_code: str | None
    lat: float | None
    lon: float | None


class SiteOut(_Out):
    id: str
    kind: SiteKind
    place_id: str
    name: str
    address: str | None
    lat: float
    lon: float
    capacity: int | None


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Ident
    kind: SiteKind
    place_id: Ident
    name: str = Field(min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    capacity: int | None = Field(default=None, gt=0, le=100_000)


class HomeOut(_Out):
    site_id: str
    name: str
    address: str | None
    lat: float
    lon: float


class ResidentOut(_Out):
    id: str
    site_id: str
    room_id: str | None
    day_care_site_id: str | None
    display_name: str
    birth_year: int | None
    sex: str
    lives_alone: bool
    care_level: str
    conditions: list[str]
    presence: str
    presence_until: datetime | None


class ResidentDetail(ResidentOut):
    #: Where the resident lives; ``null`` unless the caller may see locations.
    home: HomeOut | None = None


class DeviceOut(_Out):
    id: str
    gateway_id: str
    site_id: str
    room_id: str | None
    resident_id: str | None
    family: str
    native_id: str
    type: str
    model: str | None
    power: str
    offline_timeout_s: int
    status: Health
    last_seen: datetime | None
    battery: float | None
    #: When the device was taken out of service (it keeps its history), else null.
    retired_at: datetime | None = None


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Ident
    site_id: Ident
    room_id: Ident | None = None
    resident_id: Ident | None = None
    family: Literal["zigbee2mqtt", "wearable", "homeassistant", "bed_sensor"]
    native_id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64)
    model: str | None = Field(default=None, max_length=100)
    power: Literal["battery", "mains"] = "battery"
    offline_timeout_s: int = Field(default=3600, gt=0, le=30 * 86400)


class GatewayOut(_Out):
    id: str
    site_id: str
    status: Health
    last_seen: datetime | None
    config_version: int
    software: str | None
    created_at: datetime
    #: When the gateway was taken out of service, else null.
    retired_at: datetime | None = None


class GatewayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Ident
    site_id: Ident
    software: str | None = Field(default=None, max_length=100)


class GatewayCredentials(_Out):
    gateway_id: str
    #: The gateway's broker password: shown once, stored only as a hash.
    secret: str


class GatewayCreated(GatewayOut):
    secret: str


class ResponderOut(_Out):
    id: str
    display_name: str
    kind: str
    place_id: str | None
    site_id: str | None
    lat: float
    lon: float
    travel_mode: str
    skills: list[str]
    availability: str


class ReadingOut(_Out):
    time: datetime
    code: str
    value: float
    unit: str
    device_id: str


class RollupOut(_Out):
    bucket: datetime
    code: str
    unit: str
    n: int
    mean: float | None
    min: float | None
    max: float | None


class StatusOut(_Out):
    resident_id: str
    presence: str
    presence_until: datetime | None
    last_activity: datetime | None
    active_alerts: int
    worst_active_severity: str | None
    devices_online: int
    devices_offline: int
    lowest_battery: float | None
    as_of: datetime


class SummaryAlert(_Out):
    kind: str
    severity: str
    status: str
    opened_at: datetime


class SummaryVital(_Out):
    code: str
    n: int
    mean: float
    min: float
    max: float


class SummaryOut(_Out):
    resident_id: str
    day: str
    start: datetime
    end: datetime
    steps: int
    motion_events: int
    active_hours: int
    door_openings: int
    bathroom_visits: int
    alerts: list[SummaryAlert]
    #: ``null`` unless the caller may see vitals.
    vitals: list[SummaryVital] | None


class FamilyResidentOut(ResidentOut):
    relationship: str
    consent: dict[str, bool]


class AlertOut(_Out):
    id: int
    subject: str
    resident_id: str | None
    resident_name: str | None
    site_id: str
    site_name: str
    device_id: str | None
    kind: str
    severity: Literal["low", "medium", "high", "critical"]
    status: Literal["open", "acknowledged", "dispatched", "on_scene", "resolved", "cancelled"]
    outcome: str | None
    source: str
    detector: str
    message: str
    explanation: dict[str, Any]
    occurrences: int
    opened_at: datetime
    last_seen_at: datetime
    snoozed_until: datetime | None
    acknowledged_at: datetime | None
    dispatched_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime


class TimelineEntry(_Out):
    at: datetime
    type: Literal["transition", "comment", "assignment"]
    actor: str
    from_status: str | None
    to_status: str | None
    text: str


class AlertDetail(AlertOut):
    timeline: list[TimelineEntry]
    responders: list[str]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class DispatchIn(NoteIn):
    #: Send this responder (recorded as an assignment); omit to only mark dispatched.
    responder_id: Ident | None = None


class ResolveIn(NoteIn):
    outcome: Literal["real_incident", "false_alarm", "resident_fine"]


class SnoozeIn(NoteIn):
    minutes: int = Field(ge=1, le=24 * 60, description="quiet for this many minutes")


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=2000)


class CommentOut(_Out):
    id: int
    alert_id: int


# --- dispatch tasks (responders) -----------------------------------------------------

TaskStatusName = Literal[
    "offered",
    "accepted",
    "declined",
    "expired",
    "released",
    "en_route",
    "on_scene",
    "resolved",
    "handed_over",
    "cancelled",
]


class TaskOut(_Out):
    id: int
    alert_id: int
    responder_id: str
    status: TaskStatusName
    via: Literal["offer", "escalation"]
    eta_s: float | None
    distance_m: float | None
    offered_at: datetime
    deadline: datetime | None
    accepted_at: datetime | None
    declined_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    resolved_at: datetime | None
    handed_over_at: datetime | None
    cancelled_at: datetime | None
    outcome: Literal["helped", "hospital", "resident_fine", "false_alarm"] | None
    note: str
    #: The alert's kind, severity, site and resident (lists only).
    kind: str | None = None
    severity: str | None = None
    site_id: str | None = None
    resident_id: str | None = None


class TaskResolveIn(NoteIn):
    #: What the responder found: helped, hospital (both a real incident), resident_fine,
    #: false_alarm.
    outcome: Literal["helped", "hospital", "resident_fine", "false_alarm"]


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: Literal["on_duty", "off_duty", "busy"]


class AvailabilityOut(_Out):
    responder_id: str
    availability: Literal["on_duty", "off_duty", "busy"]


# --- coverage -----------------------------------------------------------------------


class ResidentCoverageOut(_Out):
    resident_id: str
    site_id: str
    village_id: str | None
    township_id: str | None
    #: Fastest arrival of an available responder now (seconds), None if nobody can come.
    eta_s: float | None
    #: Who that is (only if the caller may see the responder).
    responder_id: str | None
    #: Fastest arrival by local hour of the day (0-23), when asked for.
    by_hour: list[float | None]


class PlaceCoverageOut(_Out):
    place_id: str
    level: Literal["township", "village"]
    residents: int
    covered: int
    share: float
    share_by_hour: list[float]


class UncoveredSiteOut(_Out):
    site_id: str
    village_id: str | None
    township_id: str | None
    eta_s: float | None
    residents: int


class CoverageOut(_Out):
    at: datetime
    circle_s: float
    share_covered: float
    residents: list[ResidentCoverageOut]
    places: list[PlaceCoverageOut]
    uncovered_sites: list[UncoveredSiteOut]


# --- alert rules ----------------------------------------------------------------------


class EffectiveRuleOut(_Out):
    kind: str
    params: dict[str, Any]
    enabled: bool
    #: Where the parameters come from: default, global, site or resident.
    origin: str


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class RuleOut(_Out):
    kind: str
    scope: Literal["global", "site", "resident"]
    scope_id: str | None
    params: dict[str, Any]
    enabled: bool


class RetiredOut(_Out):
    """What a retirement changed."""

    #: Devices taken out of service by this call (empty when they already were).
    devices: list[str]
    #: Gateways whose configuration changed; the scheduler pushes it within a minute.
    gateways: list[str]
    #: Device-offline / low-battery / gateway-offline alerts cancelled with it.
    alerts_cancelled: list[int]


# --- monitoring coverage (which detections the devices can support) ----------------------

WatchStatus = Literal["watched", "partial", "not_watched", "off"]


class DetectionOut(_Out):
    kind: str
    #: Now: ``watched``, ``partial`` (a known blind spot), ``not_watched`` or ``off``
    #: (the rule is switched off for the resident).
    status: WatchStatus
    #: With every installed device working.
    installed: WatchStatus
    why: str
    #: What would close the gap (install, bind or repair a device); null if nothing.
    fix: str | None
    #: Working devices the detection relies on (empty for callers who may not read devices).
    devices: list[str]
    #: Devices that would feed it but are offline now (same visibility).
    offline: list[str]


class ResidentMonitoringOut(_Out):
    resident_id: str
    site_id: str
    #: Other residents of the site (the shared sensors see them too).
    housemates: int
    detections: list[DetectionOut]
    #: Device types of the resident's devices that the report does not know.
    unknown_types: list[str]


class MonitoringGroupOut(_Out):
    level: Literal["site", "township"]
    id: str
    residents: int
    #: Residents each kind leaves not watched / partly watched (kinds with none omitted).
    not_watched: dict[str, int]
    partial: dict[str, int]


class MonitoringOut(_Out):
    at: datetime
    residents: list[ResidentMonitoringOut]
    summary: list[MonitoringGroupOut]
