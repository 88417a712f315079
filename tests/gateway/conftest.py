"""Gateway test fixtures: a registry with one device of each kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carecircle.common.contract import DeviceBinding, GatewayConfig
from carecircle.gateway.registry import Registry

T0 = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)
SITE = "hh-0001"


def binding(
    dev: str, family: str, native: str, type_: str, room: str = "hh-0001-living", **kw: object
) -> DeviceBinding:
    return DeviceBinding.model_validate(
        {
            "id": dev,
            "family": family,
            "native_id": native,
            "site": SITE,
            "room": room,
            "res": "r-000001",
            "type": type_,
            **kw,
        }
    )


DEVICES = [
    binding("dev-pir", "zigbee2mqtt", "living_motion", "motion_sensor"),
    binding("dev-bath", "zigbee2mqtt", "bathroom_radar", "presence_sensor", room="hh-0001-bath"),
    binding("dev-door", "zigbee2mqtt", "front/door", "door_sensor", room="hh-0001-entrance"),
    binding("dev-leak", "zigbee2mqtt", "kitchen_leak", "water_leak_sensor", room="hh-0001-kitchen"),
    binding("dev-smoke", "zigbee2mqtt", "kitchen_smoke", "smoke_detector", room="hh-0001-kitchen"),
    binding("dev-co", "zigbee2mqtt", "boiler_co", "co_detector", room="hh-0001-kitchen"),
    binding("dev-gas", "zigbee2mqtt", "stove_gas", "gas_detector", room="hh-0001-kitchen"),
    binding("dev-th", "zigbee2mqtt", "bedroom_climate", "climate_sensor", room="hh-0001-bed"),
    binding("dev-sos", "zigbee2mqtt", "sos_tuya", "sos_button"),
    binding("dev-heiman", "zigbee2mqtt", "sos_heiman", "sos_button"),
    binding("dev-button", "zigbee2mqtt", "hall_button", "button"),
    binding("dev-vib", "zigbee2mqtt", "bed_vibration", "vibration_sensor", room="hh-0001-bed"),
    binding("dev-fall", "zigbee2mqtt", "0x00158d0001a2b3c4", "fall_radar", room="hh-0001-bath"),
    binding("dev-band", "wearable", "A4C1380F2B7D", "wearable", room=None),
    binding("dev-bed", "bed_sensor", "bed-12", "bed_sensor", room="nh-1-room-12"),
    binding("dev-ha-motion", "homeassistant", "garden", "motion_sensor"),
    binding("dev-ha-th", "homeassistant", "kitchen_th", "climate_sensor", room="hh-0001-kitchen"),
    binding("dev-ha-smoke", "homeassistant", "smoke01", "smoke_detector", room="hh-0001-kitchen"),
]


def config(version: int = 1, gw: str = "gw-0001") -> GatewayConfig:
    return GatewayConfig(gw=gw, site=SITE, version=version, devices=DEVICES)


@pytest.fixture
def registry() -> Registry:
    return Registry.from_config(config())
