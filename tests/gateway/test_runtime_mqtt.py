"""The gateway against the real Mosquitto: config over MQTT, lanes, batching, dead letters,
liveness, will/state, clean shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from carecircle.common.contract import Topics, Uplink, decode_batch
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings

from .conftest import Collector, Publisher, binding, config

GW = "gw-0001"


def settings_for(mqtt_url: str, topic_root: str, tmp_path: Path, **kw: object) -> GatewaySettings:
    return GatewaySettings.model_validate(
        {
            "gateway_id": GW,
            "site_id": "hh-0001",
            "mqtt_url": mqtt_url,
            "local_mqtt_url": mqtt_url,
            "topic_root": topic_root,
            "queue_path": tmp_path / "q.sqlite3",
            "zigbee2mqtt_base": f"{topic_root}/zigbee2mqtt",
            "careband_base": f"{topic_root}/careband",
            "bedsensor_base": f"{topic_root}/bedsensor",
            "homeassistant_base": f"{topic_root}/homeassistant",
            "batch_max_delay_ms": 300,
            "heartbeat_interval_s": 1,
            "uplink_reconnect_max_s": 1,
            "local_session_expiry_s": 60,
            "uplink_wait_for_ingest": False,  # a collector, not an ingest worker
            **kw,
        }
    )


@pytest.fixture
def running(
    mqtt_url: str, topic_root: str, tmp_path: Path, publisher_factory: Callable[[str], Publisher]
) -> Iterator[tuple[Gateway, Publisher, threading.Event]]:
    pub = publisher_factory(mqtt_url)
    cfg = config()
    devices = [
        *cfg.devices,
        binding("dev-quiet", "zigbee2mqtt", "quiet", "door_sensor", offline_timeout_s=2),
    ]
    cfg = cfg.model_copy(update={"devices": devices, "version": 3})
    topics = Topics(topic_root)
    pub.publish(topics.gateway_config(GW), cfg.model_dump_json(), retain=True)
    gw = Gateway(settings_for(mqtt_url, topic_root, tmp_path))
    stop = threading.Event()
    thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    thread.start()
    yield gw, pub, stop
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    for t in (topics.gateway_config(GW), topics.gateway_state(GW)):
        pub.publish(t, b"", retain=True)


def batches(msgs: list[tuple[str, bytes, bool]], topic: str) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in msgs if t == topic]


def test_gateway_end_to_end(
    running: tuple[Gateway, Publisher, threading.Event],
    mqtt_url: str,
    topic_root: str,
    collector_factory: Callable[[str, str], Collector],
    tmp_path: Path,
) -> None:
    gw, pub, stop = running
    topics = Topics(topic_root)
    up = collector_factory(mqtt_url, f"{topic_root}/v1/gw/{GW}/#")
    z2m = f"{topic_root}/zigbee2mqtt"
    # the registry arrives over MQTT (retained) and is cached next to the queue
    up.wait_for(lambda m: any(t == topics.gateway_state(GW) and b"online" in p for t, p, _ in m))
    deadline_cfg = up.wait_for(lambda _m: gw.registry.version == 3)
    assert deadline_cfg is not None
    assert json.loads((tmp_path / "q.sqlite3.config.json").read_text())["version"] == 3
    # a first start has no local session before the SUBACK: devices speak after it
    assert gw.local_subscribed.wait(10)

    for i in range(30):
        pub.publish(
            f"{z2m}/bedroom_climate", json.dumps({"temperature": 20 + i / 10, "humidity": 40})
        )
    pub.publish(f"{z2m}/sos_tuya", json.dumps({"action": "emergency"}))
    pub.publish(f"{z2m}/living_motion", b"{not json")
    pub.publish(
        f"{topic_root}/careband/A4C1380F2B7D/telemetry", json.dumps({"hr": 900, "battery": 80})
    )

    def complete(m: list[tuple[str, bytes, bool]]) -> bool:
        routine = [i for b in batches(m, topics.uplink(GW, Uplink.BATCH)) for i in b["items"]]  # type: ignore[attr-defined]
        status = [i for b in batches(m, topics.uplink(GW, Uplink.STATUS)) for i in b["items"]]  # type: ignore[attr-defined]
        return (
            len(routine) >= 60
            and any(t.endswith("/deadletter") for t, _, _ in m)
            and any(t.endswith("/up/alarm") for t, _, _ in m)
            # the band's battery goes in a status batch of its own, maybe after the rest
            and any(s["payload"]["code"] == "battery" for s in status)
        )

    msgs = up.wait_for(complete, timeout=15)
    routine_batches = batches(msgs, topics.uplink(GW, Uplink.BATCH))
    assert len(routine_batches) < 30, "routine readings are batched"
    items = []
    for raw in [p for t, p, _ in msgs if t == topics.uplink(GW, Uplink.BATCH)]:
        decoded = decode_batch(raw, topic_gateway=GW)
        assert not decoded.rejected
        items.extend(decoded.items)
    temps = sorted(e.payload.value or 0 for e in items if e.payload.code == "room_temperature")
    assert temps == pytest.approx([20 + i / 10 for i in range(30)])
    alarms = [i for b in batches(msgs, topics.uplink(GW, Uplink.ALARM)) for i in b["items"]]  # type: ignore[attr-defined]
    assert [(a["payload"]["code"], a["dev"]) for a in alarms] == [("sos", "dev-sos")]
    dead = [json.loads(p) for t, p, _ in msgs if t == topics.gateway_deadletter(GW)]
    reasons = " | ".join(d["reason"] for d in dead)
    assert "not JSON" in reasons and "900" in reasons
    assert all(d["gw"] == GW and d["payload"] for d in dead)
    status = [i for b in batches(msgs, topics.uplink(GW, Uplink.STATUS)) for i in b["items"]]  # type: ignore[attr-defined]
    assert any(s["kind"] == "heartbeat" for s in status)
    assert any(s["payload"]["code"] == "battery" for s in status)  # the band's battery survived
    # every queued row is deleted once acknowledged
    up.wait_for(lambda _m: len(gw.outbox) == 0 or gw.outbox.depth()[3] == 0, timeout=5)
    assert gw.counters.dead_letters >= 2

    # the silent door sensor (timeout 2 s) is reported offline once, then online when it speaks
    def availability(m: list[tuple[str, bytes, bool]]) -> list[float]:
        return [
            i["payload"]["value"]
            for b in batches(m, topics.uplink(GW, Uplink.ALARM))
            for i in b["items"]  # type: ignore[attr-defined]
            if i["dev"] == "dev-quiet" and i["payload"]["code"] == "availability"
        ]

    up.wait_for(lambda m: availability(m) == [0.0], timeout=10)
    pub.publish(f"{z2m}/quiet", json.dumps({"contact": True}))
    up.wait_for(lambda m: availability(m) == [0.0, 1.0], timeout=10)

    stop.set()
    up.wait_for(
        lambda m: any(t == topics.gateway_state(GW) and b"offline" in p for t, p, _ in m),
        timeout=10,
    )


def test_uplink_is_held_until_an_ingest_worker_answers(
    mqtt_url: str,
    topic_root: str,
    tmp_path: Path,
    publisher_factory: Callable[[str], Publisher],
    collector_factory: Callable[[str, str], Collector],
) -> None:
    """With ``uplink_wait_for_ingest`` the gateway connects, announces itself and sends
    nothing from its queue until a live answer arrives on ``gw/{id}/ingest`` (the real
    worker's side: tests/platform/test_ingest_worker.py; the broker restart it protects
    against: tests/reliability/test_faults.py).  A retained answer is not trusted."""
    topics = Topics(topic_root)
    pub = publisher_factory(mqtt_url)
    pub.publish(topics.gateway_config(GW), config().model_dump_json(), retain=True)
    # a stale retained answer (as if left from before a broker restart) must open nothing
    pub.publish(topics.gateway_ingest(GW), b'{"state":"online","worker":"old"}', retain=True)
    up = collector_factory(mqtt_url, f"{topic_root}/v1/gw/{GW}/#")
    gw = Gateway(settings_for(mqtt_url, topic_root, tmp_path, uplink_wait_for_ingest=True))
    stop = threading.Event()
    thread = threading.Thread(target=gw.run, args=(stop,), daemon=True)
    thread.start()
    try:
        up.wait_for(lambda m: any(t == topics.gateway_state(GW) for t, _, _ in m))
        up.wait_for(lambda _m: gw.registry.version >= 1)
        assert gw.local_subscribed.wait(10)
        pub.publish(f"{topic_root}/zigbee2mqtt/sos_tuya", json.dumps({"action": "emergency"}))
        up.wait_for(lambda _m: gw.outbox.depth()[0] >= 1)  # the SOS is queued …
        time.sleep(1.5)
        assert not [t for t, _, _ in up.snapshot() if "/up/" in t], "sent before ingest answered"
        assert "held" in gw.status_line(0.0)
        pub.publish(topics.gateway_ingest(GW), b"", retain=True)
        pub.publish(topics.gateway_ingest(GW), b'{"state":"online","worker":"w-test"}')
        msgs = up.wait_for(lambda m: any(t.endswith("/up/alarm") for t, _, _ in m), timeout=10)
        alarm = next(json.loads(p) for t, p, _ in msgs if t.endswith("/up/alarm"))
        assert alarm["items"][0]["payload"]["code"] == "sos"
        assert "uplink=up" in gw.status_line(0.0)
    finally:
        stop.set()
        thread.join(timeout=15)
        for t in (topics.gateway_config(GW), topics.gateway_state(GW), topics.gateway_ingest(GW)):
            pub.publish(t, b"", retain=True)
