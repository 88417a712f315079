"""The device types the simulator installs, with their models, power and timeouts.

``offline_timeout_s`` is what the gateway should allow before it calls a device
offline: a little more than two of the device's regular check-ins (battery zigbee
devices report every ~50 min, temperature sensors every 10 min, bands every 2 min
while in range, bed mats every minute).
"""

from __future__ import annotations

from dataclasses import dataclass

from carecircle.common.contract.config import DeviceFamily, Power


@dataclass(frozen=True)
class DeviceType:
    type: str
    family: DeviceFamily
    power: Power
    model: str
    offline_timeout_s: int


MOTION = DeviceType(
    "motion_sensor", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "Aqara RTCGQ11LM", 7200
)
DOOR = DeviceType("door_sensor", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "Aqara MCCGQ11LM", 7200)
CLIMATE = DeviceType(
    "temperature_humidity_sensor", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "Aqara WSDCGQ11LM", 1800
)
SMOKE = DeviceType("smoke_detector", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "HEIMAN HS1SA", 7200)
GAS = DeviceType("gas_detector", DeviceFamily.ZIGBEE2MQTT, Power.MAINS, "HEIMAN HS1CG", 1200)
CO = DeviceType("co_detector", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "HEIMAN HS1CA-E", 7200)
LEAK = DeviceType(
    "water_leak_sensor", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "Aqara SJCGQ11LM", 7200
)
SOS_TUYA = DeviceType(
    "sos_button", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "TuYa TS0215A_sos", 7200
)
SOS_HEIMAN = DeviceType("sos_button", DeviceFamily.ZIGBEE2MQTT, Power.BATTERY, "HEIMAN HS1EB", 7200)
BAND = DeviceType("wearable", DeviceFamily.WEARABLE, Power.BATTERY, "CareBand B2", 1800)
BED = DeviceType("bed_sensor", DeviceFamily.BED_SENSOR, Power.MAINS, "SleepMat M1", 300)
#: mmWave radar fall sensor on a ceiling or wall (zigbee2mqtt: ``fall_status``,
#: ``occupancy``).  Mains powered (a radar draws power continuously), so it reports no
#: ``battery``; it checks in every 15 min like the mains gas detector.
RADAR = DeviceType("radar_fall_sensor", DeviceFamily.ZIGBEE2MQTT, Power.MAINS, "HEIMAN HS2FD", 1200)
#: Probability that the radar raises ``fall_alarm`` for a fall in its own room.  An
#: ASSUMPTION, not a measured fact (see docs/simulator.md "Radar fall sensor").
RADAR_FALL_DETECTION = 0.9

BY_MODEL = {
    t.model: t
    for t in (MOTION, DOOR, CLIMATE, SMOKE, GAS, CO, LEAK, SOS_TUYA, SOS_HEIMAN, BAND, BED, RADAR)
}
ZIGBEE_ALARM_FIELD = {
    "smoke_detector": "smoke",
    "gas_detector": "gas",
    "co_detector": "carbon_monoxide",
}
ZIGBEE_ALARM_FIELD["water_leak_sensor"] = "water_leak"

#: Home Assistant entities of a device type: (component, object suffix, device_class,
#: field of the zigbee2mqtt-style state it comes from, unit).
HA_ENTITIES: dict[str, tuple[tuple[str, str, str, str, str | None], ...]] = {
    "motion_sensor": (("binary_sensor", "motion", "motion", "occupancy", None),),
    "door_sensor": (("binary_sensor", "door", "door", "contact", None),),
    "temperature_humidity_sensor": (
        ("sensor", "temperature", "temperature", "temperature", "°C"),
        ("sensor", "humidity", "humidity", "humidity", "%"),
    ),
    "smoke_detector": (("binary_sensor", "smoke", "smoke", "smoke", None),),
    "gas_detector": (("binary_sensor", "gas", "gas", "gas", None),),
    "co_detector": (("binary_sensor", "co", "carbon_monoxide", "carbon_monoxide", None),),
    "water_leak_sensor": (("binary_sensor", "leak", "moisture", "water_leak", None),),
}
HA_BATTERY = ("sensor", "battery", "battery", "battery", "%")
HA_TYPES = frozenset(HA_ENTITIES)
