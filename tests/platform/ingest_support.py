"""Helpers for the ingest, registry and rollup tests: a population, a gateway publisher."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from carecircle.common.contract import (
    DeviceBinding,
    DeviceSpec,
    GatewaySpec,
    PlaceSpec,
    Provisioning,
    ResidentSpec,
    RoomSpec,
    SiteSpec,
    Topics,
    Uplink,
)
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.ingest import IngestConfig, IngestWorker
from carecircle.platform.store import connect


def population(prefix: str, gateways: int = 2, devices: int = 3) -> Provisioning:
    """A village with one household per gateway; device ``{gw}-d{i}`` belongs to its resident."""
    p = prefix
    places = [
        PlaceSpec(id=f"{p}pf", level="prefecture", name="P", lat=30, lon=120),
        PlaceSpec(id=f"{p}co", parent_id=f"{p}pf", level="county", name="C", lat=30, lon=120),
        PlaceSpec(id=f"{p}tw", parent_id=f"{p}co", level="township", name="T", lat=30, lon=120),
        PlaceSpec(id=f"{p}vi", parent_id=f"{p}tw", level="village", name="V", lat=30, lon=120),
    ]
    sites, rooms, residents, gws, devs = [], [], [], [], []
    for g in range(gateways):
        site, gw, res = f"{p}hh{g}", f"{p}gw{g}", f"{p}r{g}"
        sites.append(
            SiteSpec(id=site, kind="household", place_id=f"{p}vi", name=f"H{g}", lat=30, lon=120)
        )
        rooms.append(RoomSpec(id=f"{site}-bed", site_id=site, kind="bedroom", name="bed"))
        residents.append(ResidentSpec(id=res, site_id=site, display_name=f"Elder {g}"))
        gws.append(GatewaySpec(id=gw, site_id=site))
        for d in range(devices):
            devs.append(
                DeviceSpec(
                    gateway_id=gw,
                    binding=DeviceBinding(
                        id=f"{gw}-d{d}",
                        family="wearable",
                        native_id=f"A4C1380F{g:02X}{d:02X}",
                        site=site,
                        room=f"{site}-bed",
                        res=res,
                        type="wearable",
                    ),
                )
            )
    return Provisioning(
        places=places, sites=sites, rooms=rooms, residents=residents, gateways=gws, devices=devs
    )


def item(
    gw: str,
    dev: str,
    *,
    site: str,
    res: str | None,
    ts: datetime,
    code: str = "heart_rate",
    value: float | None = 72,
    kind: str = "reading",
    msg_id: uuid.UUID | None = None,
    attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": code, "value": value}
    if attrs:
        payload["attrs"] = attrs
    doc: dict[str, Any] = {
        "v": 1,
        "id": str(msg_id or uuid.uuid4()),
        "kind": kind,
        "gw": gw,
        "dev": dev,
        "site": site,
        "ts": ts.isoformat(),
        "gw_ts": ts.isoformat(),
        "payload": payload,
    }
    if res is not None:
        doc["res"] = res
    return doc


def batch(gw: str, items: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"v": 1, "gw": gw, "sent_at": datetime.now(UTC).isoformat(), "items": list(items)}
    ).encode()


def readings_for(
    prefix: str, g: int, n: int, *, start: datetime, devices: int = 3, step_s: float = 1.0
) -> list[dict[str, Any]]:
    gw = f"{prefix}gw{g}"
    return [
        item(
            gw,
            f"{gw}-d{i % devices}",
            site=f"{prefix}hh{g}",
            res=f"{prefix}r{g}",
            ts=start + timedelta(seconds=i * step_s),
            value=60 + (i % 40),
        )
        for i in range(n)
    ]


class Publisher:
    """A stand-in gateway uplink: publishes canonical batches with QoS 1."""

    def __init__(self, mqtt_url: str, topics: Topics) -> None:
        self.topics = topics
        conn = new_connection(BrokerAddress.from_url(mqtt_url))
        self.client = conn.client
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        conn.connect()
        self.client.loop_start()
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def send(
        self, gw: str, payload: bytes, channel: Uplink = Uplink.BATCH, retain: bool = False
    ) -> None:
        self._infos.append(
            self.client.publish(self.topics.uplink(gw, channel), payload, qos=1, retain=retain)
        )

    def raw(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self._infos.append(self.client.publish(topic, payload, qos=1, retain=retain))

    def flush(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in self._infos:
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a publish in time"
        self._infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@contextmanager
def running_worker(
    database_url: str,
    mqtt_url: str,
    topics: Topics,
    client_id: str | None = None,
    **config: Any,
) -> Iterator[IngestWorker]:
    worker = IngestWorker(
        IngestConfig(
            client_id=client_id or f"ingest-{uuid.uuid4().hex[:8]}",
            **{"session_expiry_s": 60, **config},
        ),
        broker=BrokerAddress.from_url(mqtt_url),
        topics=topics,
        connect_db=lambda: connect(database_url, timeout_s=3),
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def count(conn: Any, query: str, *args: object) -> int:
    row = conn.execute(query, args).fetchone()
    return int(row[0])


def clear_retained(mqtt_url: str, topics: Topics, gateway_ids: Iterable[str]) -> None:
    """Delete the retained configs of ``gateway_ids`` a test left on the shared broker."""
    conn = new_connection(BrokerAddress.from_url(mqtt_url))
    conn.connect()
    conn.client.loop_start()
    try:
        for gw in gateway_ids:
            conn.client.publish(
                topics.gateway_config(gw), b"", qos=1, retain=True
            ).wait_for_publish(5)
    finally:
        conn.client.disconnect()
        conn.client.loop_stop()


def clear_session(mqtt_url: str, client_id: str) -> None:
    """End a persistent session left on the broker by a worker (clean start, expiry 0)."""
    conn = new_connection(BrokerAddress.from_url(mqtt_url), client_id=client_id)
    conn.connect()
    conn.client.loop_start()
    time.sleep(0.2)
    conn.client.disconnect()
    conn.client.loop_stop()
