"""The gateway's message handler and housekeeping without MQTT (injected clock, real queue)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from carecircle.common.clock import ManualClock
from carecircle.gateway.outbox import Lane
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings

from .conftest import DEVICES, T0, binding, config


def gateway(tmp_path: Path, clock: ManualClock) -> Gateway:
    s = GatewaySettings(gateway_id="gw-0001", queue_path=tmp_path / "q.sqlite3")
    gw = Gateway(s, clock=clock)
    quiet = binding("dev-quiet", "zigbee2mqtt", "quiet", "motion_sensor", offline_timeout_s=60)
    assert gw.use_config(config().model_copy(update={"devices": [*DEVICES, quiet]}))
    return gw


def bodies(gw: Gateway, lane: Lane) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in gw.outbox.next_rows(lane, 0, 1000)]


def test_broker_redelivery_of_a_committed_message_is_skipped(tmp_path: Path) -> None:
    gw = gateway(tmp_path, ManualClock(T0))
    payload = b'{"temperature": 21.0}'
    assert gw.handle_native("zigbee2mqtt/bedroom_climate", payload) is not None
    assert gw.handle_native("zigbee2mqtt/bedroom_climate", payload, redelivered=True) is None
    assert len(gw.outbox) == 1 and gw.counters.redeliveries_skipped == 1
    # the same bytes again without the DUP flag are a new reading; a DUP never seen is kept
    assert gw.handle_native("zigbee2mqtt/bedroom_climate", payload) is not None
    other = b'{"temperature": 22.0}'
    assert gw.handle_native("zigbee2mqtt/bedroom_climate", other, redelivered=True) is not None
    assert len(gw.outbox) == 3


def test_silent_sensor_offline_once_then_online(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    gw = gateway(tmp_path, clock)
    clock.advance(timedelta(seconds=30))
    gw.handle_native("zigbee2mqtt/quiet", b'{"illuminance": 12}')  # speaks, nothing to map
    clock.advance(timedelta(seconds=50))
    assert gw.check_liveness() == 0  # 50 s of silence, timeout 60 s
    clock.advance(timedelta(seconds=15))
    assert gw.check_liveness() == 1
    assert gw.check_liveness() == 0  # reported once
    gw.handle_native("zigbee2mqtt/quiet", b'{"occupancy": false}')
    avail = [b for b in bodies(gw, Lane.ALARM) if b["dev"] == "dev-quiet"]
    assert [(a["payload"]["value"], a["payload"]["attrs"]["source"]) for a in avail] == [  # type: ignore[index]
        (0.0, "gateway_liveness"),
        (1.0, "gateway_liveness"),
    ]
    assert avail[0]["payload"]["attrs"]["silent_s"] == 65  # type: ignore[index]


def test_heartbeat_carries_queue_depth(tmp_path: Path) -> None:
    gw = gateway(tmp_path, ManualClock(T0))
    gw.handle_native("zigbee2mqtt/bedroom_climate", b'{"temperature": 21.0, "humidity": 40}')
    gw.heartbeat()
    (hb,) = bodies(gw, Lane.STATUS)
    assert hb["kind"] == "heartbeat" and hb["dev"] == "gw-0001" and hb["site"] == "hh-0001"
    assert hb["payload"]["value"] == 2  # type: ignore[index]


def test_pushed_configs_versions_and_refusals(tmp_path: Path) -> None:
    gw = gateway(tmp_path, ManualClock(T0))
    assert gw.registry.version == 1
    assert not gw.apply_config(config(version=1).model_dump_json().encode())  # not newer
    assert gw.apply_config(config(version=4).model_dump_json().encode())
    assert not gw.apply_config(config(version=3).model_dump_json().encode())  # older
    assert not gw.apply_config(config(version=9, gw="gw-0002").model_dump_json().encode())
    assert not gw.apply_config(b"{broken")
    assert gw.registry.version == 4
    dead = bodies(gw, Lane.DEADLETTER)
    assert len(dead) == 2 and "gw-0002" in str(dead[0]["reason"])
    # a restarted gateway starts from the cache
    gw.outbox.close()
    again = Gateway(GatewaySettings(gateway_id="gw-0001", queue_path=tmp_path / "q.sqlite3"))
    assert again.registry.version == 4


def test_local_subscriptions_count_only_once_granted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SUBACK decides: a refused filter is an error naming it (its devices would never
    be heard); the gateway counts as subscribed only when something was granted."""
    caplog.set_level(logging.INFO, "carecircle.gateway")
    gw = gateway(tmp_path, ManualClock(T0))
    granted, refused = (
        ReasonCode(PacketTypes.SUBACK, "Granted QoS 1"),
        ReasonCode(PacketTypes.SUBACK, "Not authorized"),
    )
    gw._local_subs[7] = ["z2m/#", "careband/#"]
    gw._on_local_subscribe(None, None, 7, [refused, refused], None)  # type: ignore[arg-type]
    assert not gw.local_subscribed.is_set()
    assert "refused the subscription to z2m/# (Not authorized)" in caplog.text
    assert "refused the subscription to careband/# (Not authorized)" in caplog.text
    gw._local_subs[8] = ["z2m/#", "careband/#"]
    gw._on_local_subscribe(None, None, 8, [granted, refused], None)  # type: ignore[arg-type]
    assert gw.local_subscribed.is_set() and "granted 1 of 2 topic filters" in caplog.text
    assert gw._local_subs == {}
    gw._on_local_disconnect(None, None, None, refused, None)  # type: ignore[arg-type]
    assert not gw.local_subscribed.is_set()
