"""Registry cache and versions; per-sensor liveness."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carecircle.common.contract import DeviceFamily
from carecircle.common.errors import ContractError
from carecircle.gateway.liveness import LivenessTracker
from carecircle.gateway.registry import ConfigCache, Registry, is_bathroom_presence, parse_config

from .conftest import DEVICES, T0, binding, config


def test_cache_round_trip_and_atomic_file(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path / "q.sqlite3.config.json")
    assert cache.load("gw-0001") is None
    cache.save(config(version=7))
    loaded = cache.load("gw-0001")
    assert loaded is not None and loaded.version == 7 and len(loaded.devices) == len(DEVICES)
    assert not (tmp_path / "q.sqlite3.config.json.tmp").exists()
    assert cache.load("gw-other") is None  # a cache for another gateway is ignored


def test_parse_config_refuses_other_gateway_and_garbage() -> None:
    raw = config(gw="gw-0002").model_dump_json().encode()
    with pytest.raises(ContractError, match="gw-0002"):
        parse_config(raw, "gw-0001")
    with pytest.raises(ContractError):
        parse_config(b'{"gw": "gw-0001"}', "gw-0001")


def test_lookup_by_family_and_native_id() -> None:
    reg = Registry.from_config(config())
    assert reg.lookup(DeviceFamily.ZIGBEE2MQTT, "kitchen_smoke") is not None
    assert reg.lookup(DeviceFamily.WEARABLE, "kitchen_smoke") is None


def test_bathroom_presence_rules() -> None:
    assert is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "presence_sensor", room="hh-1-bath")
    )
    assert is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "presence_sensor", room="r7", room_kind="toilet")
    )
    assert not is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "motion_sensor", room="hh-1-bath")
    )
    assert not is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "presence_sensor", room="hh-1-bathtub-lounge")
    )
    # the HEIMAN HS2FD radar fall sensor (device_sim catalog.RADAR) is a presence type
    assert is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "radar_fall_sensor", room="hh-1-bath")
    )
    assert not is_bathroom_presence(
        binding("d", "zigbee2mqtt", "n", "radar_fall_sensor", room="hh-1-living")
    )


def test_silent_sensor_reported_once_and_back_online() -> None:
    short = binding("dev-a", "zigbee2mqtt", "a", "motion_sensor", offline_timeout_s=60)
    long = binding("dev-b", "zigbee2mqtt", "b", "door_sensor", offline_timeout_s=3600)
    tracker = LivenessTracker(T0)
    assert tracker.due([short, long], T0 + timedelta(seconds=59)) == []  # grace from start
    tracker.seen("dev-a", T0 + timedelta(seconds=30))
    assert tracker.due([short, long], T0 + timedelta(seconds=89)) == []
    due = tracker.due([short, long], T0 + timedelta(seconds=91))
    assert [(s.binding.id, round(s.silent_s)) for s in due] == [("dev-a", 61)]
    assert tracker.due([short, long], T0 + timedelta(seconds=200)) == []  # once
    assert tracker.seen("dev-a", T0 + timedelta(seconds=201)) is True  # back online
    assert tracker.seen("dev-a", T0 + timedelta(seconds=202)) is False
    tracker.seen("dev-a", T0 + timedelta(seconds=3590))
    assert [s.binding.id for s in tracker.due([short, long], T0 + timedelta(seconds=3601))] == [
        "dev-b"
    ]


def test_newly_provisioned_device_gets_its_grace_period_from_then() -> None:
    late = binding("dev-late", "zigbee2mqtt", "late", "motion_sensor", offline_timeout_s=60)
    tracker = LivenessTracker(T0)
    tracker.watch(["dev-late"], T0 + timedelta(hours=2))
    assert tracker.due([late], T0 + timedelta(hours=2, seconds=59)) == []
    assert [s.binding.id for s in tracker.due([late], T0 + timedelta(hours=2, seconds=61))] == [
        "dev-late"
    ]
