"""Gateway test fixtures: a registry with one device of each kind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest

from carecircle.common.contract import DeviceBinding, GatewayConfig
from carecircle.common.mqtt import BrokerAddress, new_connection
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


# -- real MQTT helpers ----------------------------------------------------------------


@dataclass
class Collector:
    """Subscribes to a filter on a real broker and keeps every message, in arrival order."""

    url: str
    topic_filter: str
    persistent: bool = False
    ca_file: str | None = None
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        ready = threading.Event()
        if self.persistent:  # the broker keeps our subscription and messages while we are away
            self.conn = new_connection(
                BrokerAddress.from_url(self.url),
                clean_start=False,
                session_expiry_s=600,
                ca_file=self.ca_file,
            )
        else:
            self.conn = new_connection(BrokerAddress.from_url(self.url), ca_file=self.ca_file)
        c = self.conn.client

        def on_connect(client: mqtt.Client, *_: object) -> None:
            client.subscribe(self.topic_filter, qos=1)

        def on_subscribe(*_: object) -> None:
            ready.set()

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            with self.lock:
                self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

        c.on_connect = on_connect
        c.on_subscribe = on_subscribe
        c.on_message = on_message
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.connect_async(
            self.conn.address.host,
            self.conn.address.port,
            clean_start=self.conn.clean_start,
            properties=self.conn.properties,
        )
        c.loop_start()
        assert ready.wait(10), f"collector could not subscribe to {self.url}"

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.messages)

    def wait_for(
        self, predicate: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float = 10
    ) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            time.sleep(0.05)
        raise AssertionError(
            f"condition not met within {timeout} s; {len(self.snapshot())} messages seen"
        )

    def close(self) -> None:
        self.conn.client.disconnect()
        self.conn.client.loop_stop()


class Publisher:
    """A deterministic native-device publisher (QoS 1, waits for each PUBACK)."""

    def __init__(self, url: str, ca_file: str | None = None) -> None:
        self.conn = new_connection(BrokerAddress.from_url(url), ca_file=ca_file)
        self.conn.connect()
        self.conn.client.loop_start()

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 1
    ) -> None:
        info = self.conn.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), topic

    def close(self) -> None:
        self.conn.client.disconnect()
        self.conn.client.loop_stop()


@pytest.fixture
def collector_factory() -> Iterator[Callable[[str, str], Collector]]:
    made: list[Collector] = []

    def make(url: str, topic_filter: str) -> Collector:
        c = Collector(url, topic_filter)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def publisher_factory() -> Iterator[Callable[[str], Publisher]]:
    made: list[Publisher] = []

    def make(url: str) -> Publisher:
        p = Publisher(url)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
