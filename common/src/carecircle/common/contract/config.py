"""Gateway configuration pushed by the platform (retained on ``…/gw/{gw}/config``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from carecircle.common.contract.envelope import SCHEMA_VERSION, Ident


class DeviceFamily(StrEnum):
    ZIGBEE2MQTT = "zigbee2mqtt"
    WEARABLE = "wearable"
    HOMEASSISTANT = "homeassistant"
    BED_SENSOR = "bed_sensor"


#: Device types (``DeviceBinding.type``) that sense a person's presence rather than
#: movement: a gateway maps them in a bathroom to ``bathroom_presence``.  Their
#: ``occupancy`` is a held state, re-sent while someone is there (a radar fall sensor
#: every ~15 min), not a trigger: the platform counts only its changes as activity.
PRESENCE_TYPES = frozenset(
    {"presence_sensor", "bathroom_presence_sensor", "radar", "radar_fall_sensor"}
)
#: Device types whose activations mean "someone moved here" (``motion`` /
#: ``bathroom_presence`` readings).
MOTION_TYPES = frozenset({"motion_sensor"}) | PRESENCE_TYPES
#: Device types whose every button action means "help" (an ``sos`` event).
SOS_TYPES = frozenset({"sos_button", "panic_button", "emergency_button", "sos"})


class Power(StrEnum):
    BATTERY = "battery"
    MAINS = "mains"


class DeviceBinding(BaseModel):
    """Which device is where: what a gateway needs to turn native payloads into envelopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Ident
    family: DeviceFamily
    #: The name the device uses on the local broker (zigbee2mqtt friendly name, band MAC).
    native_id: str = Field(min_length=1, max_length=128)
    site: Ident
    room: Ident | None = None
    #: Kind of that room (``RoomKind`` of the provisioning document, e.g. ``bathroom``),
    #: optional: the gateway maps a presence sensor in a bathroom to ``bathroom_presence``.
    room_kind: str | None = Field(default=None, max_length=32)
    res: Ident | None = None
    #: Device type as provisioned, e.g. ``motion_sensor``, ``door_sensor``, ``wearable``.
    type: str = Field(min_length=1, max_length=64)
    power: Power = Power.BATTERY
    #: Silence longer than this marks the device offline (per device, not per gateway).
    offline_timeout_s: PositiveInt = 3600


class GatewayConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = SCHEMA_VERSION
    gw: Ident
    site: Ident
    #: Increases with every change; a gateway ignores a config older than the one it has.
    version: int = Field(ge=0)
    devices: list[DeviceBinding] = Field(default_factory=list)
