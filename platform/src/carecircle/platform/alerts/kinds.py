"""Alert kinds (= ground-truth incident kinds) and their default severity."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from carecircle.common.contract import PRESENCE_TYPES, Code
from carecircle.platform.alerts.lifecycle import Severity


class AlertKind(StrEnum):
    SOS = "sos"
    FALL = "fall"
    SMOKE = "smoke"
    GAS = "gas"
    CARBON_MONOXIDE = "carbon_monoxide"
    WATER_LEAK = "water_leak"
    TACHYCARDIA = "tachycardia"
    BRADYCARDIA = "bradycardia"
    LOW_SPO2 = "low_spo2"
    FEVER = "fever"
    COLD_ROOM = "cold_room"
    HEAT = "heat"
    PROLONGED_INACTIVITY = "prolonged_inactivity"
    MISSED_WAKEUP = "missed_wakeup"
    NIGHT_WANDERING = "night_wandering"
    BED_EXIT_NOT_RETURNED = "bed_exit_not_returned"
    DEVICE_OFFLINE = "device_offline"
    LOW_BATTERY = "low_battery"
    GATEWAY_OFFLINE = "gateway_offline"
    # model-based (the ml component raises these through the same repository)
    UNUSUAL_INACTIVITY = "unusual_inactivity"
    UNUSUAL_NIGHT_ACTIVITY = "unusual_night_activity"
    MISSED_ROUTINE = "missed_routine"
    VITALS_ANOMALY = "vitals_anomaly"
    ROUTINE_DRIFT = "routine_drift"


K = AlertKind

SEVERITY: Final[dict[AlertKind, Severity]] = {
    K.SOS: Severity.CRITICAL,
    K.FALL: Severity.CRITICAL,
    K.SMOKE: Severity.CRITICAL,
    K.GAS: Severity.CRITICAL,
    K.CARBON_MONOXIDE: Severity.CRITICAL,
    K.WATER_LEAK: Severity.HIGH,
    K.TACHYCARDIA: Severity.HIGH,
    K.BRADYCARDIA: Severity.HIGH,
    K.LOW_SPO2: Severity.HIGH,
    K.FEVER: Severity.MEDIUM,
    K.COLD_ROOM: Severity.HIGH,
    K.HEAT: Severity.MEDIUM,
    K.PROLONGED_INACTIVITY: Severity.HIGH,
    K.MISSED_WAKEUP: Severity.MEDIUM,
    K.NIGHT_WANDERING: Severity.HIGH,
    K.BED_EXIT_NOT_RETURNED: Severity.HIGH,
    K.DEVICE_OFFLINE: Severity.MEDIUM,
    K.LOW_BATTERY: Severity.LOW,
    K.GATEWAY_OFFLINE: Severity.MEDIUM,
    K.UNUSUAL_INACTIVITY: Severity.MEDIUM,
    K.UNUSUAL_NIGHT_ACTIVITY: Severity.MEDIUM,
    K.MISSED_ROUTINE: Severity.MEDIUM,
    K.VITALS_ANOMALY: Severity.MEDIUM,
    K.ROUTINE_DRIFT: Severity.LOW,
}
assert set(SEVERITY) == set(AlertKind)

#: Codes that raise an alert the moment a value of 1 arrives.
IMMEDIATE: Final[dict[Code, AlertKind]] = {
    Code.SOS: K.SOS,
    Code.FALL: K.FALL,
    Code.SMOKE: K.SMOKE,
    Code.GAS: K.GAS,
    Code.CARBON_MONOXIDE: K.CARBON_MONOXIDE,
    Code.WATER_LEAK: K.WATER_LEAK,
}

#: Never damped as flapping, never suppressed by presence.
CRITICAL: Final[frozenset[AlertKind]] = frozenset(
    k for k, s in SEVERITY.items() if s is Severity.CRITICAL
)

#: Checks about life at home: suppressed while the resident is away, in hospital or at day care.
HOME_ACTIVITY: Final[frozenset[AlertKind]] = frozenset(
    {K.PROLONGED_INACTIVITY, K.MISSED_WAKEUP, K.NIGHT_WANDERING, K.BED_EXIT_NOT_RETURNED}
)

#: Technical alerts about equipment; they clear themselves when the condition clears.
TECHNICAL: Final[frozenset[AlertKind]] = frozenset(
    {K.DEVICE_OFFLINE, K.LOW_BATTERY, K.GATEWAY_OFFLINE}
)

#: Codes that show someone is up and about (activity for absence checks).
ACTIVITY_CODES: Final[frozenset[Code]] = frozenset(
    {Code.MOTION, Code.DOOR, Code.BED_OCCUPANCY, Code.BATHROOM_PRESENCE, Code.STEPS, Code.BUTTON}
)


def is_presence(code: str, device_type: str | None) -> bool:
    """Is this activity code of this device a held presence state, not a trigger?

    ``bathroom_presence`` always is (a gateway sends it only for a presence sensor);
    ``motion`` is when the device's type (``devices.type``) is a presence type
    (``PRESENCE_TYPES``: a presence sensor or radar outside a bathroom).  A PIR's
    ``motion`` is a trigger: each ``occupancy: true`` is someone moving.
    """
    if code == Code.BATHROOM_PRESENCE.value:
        return True
    return code == Code.MOTION.value and device_type in PRESENCE_TYPES
