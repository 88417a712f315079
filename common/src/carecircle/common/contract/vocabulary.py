"""The closed vocabulary of what CareCircle measures and what can happen.

Every canonical message carries one :class:`Code`.  Each code has a fixed unit
(UCUM), a value type, a plausible range (values outside it are refused as
impossible, e.g. heart rate 900), the message kinds it may appear in, and its
LOINC code or SCAIP (CLC/TS 50134-9) device/status code where one exists, so that
FHIR and SCAIP bridges are mappings, not rewrites.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What sort of message an envelope is."""

    READING = "reading"  #: a sampled value: a vital sign, a room measurement, a sensor state
    EVENT = "event"  #: something happened: SOS pressed, fall detected, smoke, a button
    STATUS = "status"  #: the device itself: battery, link quality, availability
    HEARTBEAT = "heartbeat"  #: the gateway is alive (with its queue depth)


class ValueType(StrEnum):
    NUMBER = "number"
    BOOLEAN = "boolean"  #: 1.0 = true/active/open/detected, 0.0 = false/clear/closed
    COUNT = "count"  #: a non-negative whole number


class Category(StrEnum):
    VITAL = "vital"
    ENVIRONMENT = "environment"
    ACTIVITY = "activity"
    ALARM = "alarm"
    DEVICE = "device"


class Code(StrEnum):
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    RESPIRATORY_RATE = "respiratory_rate"
    SKIN_TEMPERATURE = "skin_temperature"
    BODY_TEMPERATURE = "body_temperature"
    ROOM_TEMPERATURE = "room_temperature"
    HUMIDITY = "humidity"
    STEPS = "steps"
    MOTION = "motion"
    DOOR = "door"
    BED_OCCUPANCY = "bed_occupancy"
    BATHROOM_PRESENCE = "bathroom_presence"
    SMOKE = "smoke"
    GAS = "gas"
    CARBON_MONOXIDE = "carbon_monoxide"
    WATER_LEAK = "water_leak"
    SOS = "sos"
    FALL = "fall"
    BUTTON = "button"
    BATTERY = "battery"
    LINK_QUALITY = "link_quality"
    AVAILABILITY = "availability"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class CodeSpec:
    code: Code
    category: Category
    kinds: frozenset[Kind]
    unit: str  #: UCUM unit; "1" for booleans
    value_type: ValueType
    minimum: float | None = None
    maximum: float | None = None
    #: Urgent: travels in the gateway's priority lane and is never dropped.
    alarm: bool = False
    loinc: str | None = None
    scaip_device: str | None = None
    scaip_status: str | None = None
    description: str = ""

    def check_value(self, value: float | None) -> str | None:
        """Return why ``value`` is impossible for this code, or ``None`` if it is fine."""
        if value is None:
            return None if self.value_type is ValueType.BOOLEAN else "a value is required"
        if value != value or value in (float("inf"), float("-inf")):
            return "value is not a finite number"
        if self.value_type is ValueType.BOOLEAN and value not in (0.0, 1.0):
            return "boolean values are 0 or 1"
        if self.value_type is ValueType.COUNT and (value < 0 or value != int(value)):
            return "counts are non-negative whole numbers"
        if self.minimum is not None and value < self.minimum:
            return f"{value:g} {self.unit} is below the possible minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{value:g} {self.unit} is above the possible maximum {self.maximum:g}"
        return None


_R = frozenset({Kind.READING})
_E = frozenset({Kind.EVENT})
_RE = frozenset({Kind.READING, Kind.EVENT})
_S = frozenset({Kind.STATUS})
_B = ValueType.BOOLEAN

VOCABULARY: dict[Code, CodeSpec] = {
    s.code: s
    for s in [
        CodeSpec(
            Code.HEART_RATE,
            Category.VITAL,
            _R,
            "/min",
            ValueType.NUMBER,
            20,
            250,
            loinc="8867-4",
            scaip_device="0019",
            description="heart rate",
        ),
        CodeSpec(
            Code.SPO2,
            Category.VITAL,
            _R,
            "%",
            ValueType.NUMBER,
            50,
            100,
            loinc="2708-6",
            description="oxygen saturation (pulse oximetry)",
        ),
        CodeSpec(
            Code.RESPIRATORY_RATE,
            Category.VITAL,
            _R,
            "/min",
            ValueType.NUMBER,
            4,
            60,
            loinc="9279-1",
            description="respiratory rate (bed mat sensor)",
        ),
        CodeSpec(
            Code.SKIN_TEMPERATURE,
            Category.VITAL,
            _R,
            "Cel",
            ValueType.NUMBER,
            20,
            45,
            loinc="39106-0",
            description="skin temperature at the wearable",
        ),
        CodeSpec(
            Code.BODY_TEMPERATURE,
            Category.VITAL,
            _R,
            "Cel",
            ValueType.NUMBER,
            30,
            45,
            loinc="8310-5",
            description="body temperature",
        ),
        CodeSpec(
            Code.ROOM_TEMPERATURE,
            Category.ENVIRONMENT,
            _R,
            "Cel",
            ValueType.NUMBER,
            -40,
            70,
            description="room air temperature",
        ),
        CodeSpec(
            Code.HUMIDITY,
            Category.ENVIRONMENT,
            _R,
            "%",
            ValueType.NUMBER,
            0,
            100,
            description="relative humidity",
        ),
        CodeSpec(
            Code.STEPS,
            Category.ACTIVITY,
            _R,
            "{steps}",
            ValueType.COUNT,
            0,
            100_000,
            loinc="55423-8",
            description="steps since the previous reading",
        ),
        CodeSpec(
            Code.MOTION,
            Category.ACTIVITY,
            _R,
            "1",
            _B,
            scaip_device="0015",
            description="PIR/radar occupancy: 1 = motion seen",
        ),
        CodeSpec(
            Code.DOOR,
            Category.ACTIVITY,
            _R,
            "1",
            _B,
            scaip_status="0077",
            description="door state: 1 = open, 0 = closed (zigbee2mqtt contact=true is 0)",
        ),
        CodeSpec(
            Code.BED_OCCUPANCY,
            Category.ACTIVITY,
            _R,
            "1",
            _B,
            scaip_device="0012",
            scaip_status="0117",
            description="1 = someone in bed",
        ),
        CodeSpec(
            Code.BATHROOM_PRESENCE,
            Category.ACTIVITY,
            _R,
            "1",
            _B,
            description="1 = someone in the bathroom/toilet",
        ),
        CodeSpec(
            Code.SMOKE,
            Category.ALARM,
            _RE,
            "1",
            _B,
            alarm=True,
            scaip_device="0023",
            description="smoke detected",
        ),
        CodeSpec(
            Code.GAS,
            Category.ALARM,
            _RE,
            "1",
            _B,
            alarm=True,
            description="combustible gas (natural gas/LPG) detected",
        ),
        CodeSpec(
            Code.CARBON_MONOXIDE,
            Category.ALARM,
            _RE,
            "1",
            _B,
            alarm=True,
            scaip_device="0026",
            description="carbon monoxide detected",
        ),
        CodeSpec(
            Code.WATER_LEAK,
            Category.ALARM,
            _RE,
            "1",
            _B,
            alarm=True,
            description="water leak detected",
        ),
        CodeSpec(
            Code.SOS,
            Category.ALARM,
            _E,
            "1",
            _B,
            alarm=True,
            scaip_status="0010",
            description="SOS / manual alarm pressed",
        ),
        CodeSpec(
            Code.FALL,
            Category.ALARM,
            _E,
            "1",
            _B,
            alarm=True,
            scaip_device="0005",
            description="fall detected (1) or fall warning cleared (0)",
        ),
        CodeSpec(
            Code.BUTTON,
            Category.ACTIVITY,
            _E,
            "1",
            _B,
            description="a non-emergency button action; attrs.action names it",
        ),
        CodeSpec(
            Code.BATTERY,
            Category.DEVICE,
            _S,
            "%",
            ValueType.NUMBER,
            0,
            100,
            scaip_status="0016",
            description="battery charge",
        ),
        CodeSpec(
            Code.LINK_QUALITY,
            Category.DEVICE,
            _S,
            "{lqi}",
            ValueType.NUMBER,
            0,
            255,
            description="radio link quality (zigbee LQI 0-255)",
        ),
        CodeSpec(
            Code.AVAILABILITY,
            Category.DEVICE,
            _S,
            "1",
            _B,
            alarm=True,
            description="device reachable: 1 = online, 0 = offline",
        ),
        CodeSpec(
            Code.HEARTBEAT,
            Category.DEVICE,
            frozenset({Kind.HEARTBEAT}),
            "1",
            ValueType.COUNT,
            0,
            None,
            description="gateway heartbeat; value = messages waiting in its queue",
        ),
    ]
}

assert set(VOCABULARY) == set(Code), "every Code needs a CodeSpec"


def spec(code: Code) -> CodeSpec:
    return VOCABULARY[code]
