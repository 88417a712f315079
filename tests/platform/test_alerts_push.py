"""Alert changes reach MQTT ``{root}/v1/platform/alerts`` (real PostgreSQL and Mosquitto)."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg

from carecircle.common.contract import Topics
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.lifecycle import Severity, Status
from carecircle.platform.alerts.push import run_alert_push

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_changes_are_pushed_to_mqtt(
    db: psycopg.Connection[tuple[object, ...]], database_url: str, mqtt_url: str, topic_root: str
) -> None:
    p = f"m{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
        (f"{p}hh", f"{p}vi"),
    )
    topics = Topics(topic_root)
    addr = BrokerAddress.from_url(mqtt_url)
    got: queue.Queue[dict[str, object]] = queue.Queue(maxsize=100)
    subscribed = threading.Event()
    sub = new_connection(addr, f"{topic_root}-sub")

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(topics.alerts(), qos=1)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        got.put(json.loads(msg.payload))

    sub.client.on_connect = on_connect
    sub.client.on_subscribe = lambda *_: subscribed.set()
    sub.client.on_message = on_message
    sub.connect()
    sub.client.loop_start()
    pub = new_connection(addr, f"{topic_root}-pub")
    pub.connect()
    pub.client.loop_start()
    stop = threading.Event()
    sent: list[int] = []
    listen = psycopg.connect(database_url, autocommit=True)
    read = psycopg.connect(database_url, autocommit=True)
    bridge = threading.Thread(
        target=lambda: sent.append(
            run_alert_push(
                listen,
                read,
                lambda t, b: pub.client.publish(t, b, qos=1).wait_for_publish(5),
                topics,
                stop,
                poll_s=0.1,
            )
        ),
    )
    try:
        assert subscribed.wait(10)
        bridge.start()
        # give the bridge time to LISTEN: wait until the backend shows the LISTEN
        pid = listen.info.backend_pid
        for _ in range(200):
            row = db.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
            if row and str(row[0]).startswith("LISTEN"):
                break
            stop.wait(0.02)
        change = repo.open_or_refresh(
            db,
            repo.AlertDraft(
                subject=f"{p}hh",
                site_id=f"{p}hh",
                kind="smoke",
                severity=Severity.CRITICAL,
                detector="rule:smoke",
                at=T0,
                message="smoke detected",
            ),
        )
        repo.transition(db, change.id, Status.ACKNOWLEDGED, actor="staff:1", at=T0)
        first, second = got.get(timeout=10), got.get(timeout=10)
    finally:
        stop.set()
        bridge.join(timeout=5)
        for c in (sub, pub):
            c.client.loop_stop()
            c.client.disconnect()
        listen.close()
        read.close()
    assert first["id"] == change.id and first["change"] == "opened" and first["kind"] == "smoke"
    assert first["message"] == "smoke detected" and first["opened_at"] == T0.isoformat()
    assert second["change"] == "transition" and second["status"] == "acknowledged"
    assert sent == [2]


def test_push_service_from_settings(
    db: psycopg.Connection[tuple[object, ...]], database_url: str, mqtt_url: str, topic_root: str
) -> None:
    from carecircle.platform.alerts.push import AlertPushService
    from carecircle.platform.settings import PlatformSettings

    p = f"n{uuid.uuid4().hex[:6]}"
    db.execute(
        "INSERT INTO places (id, parent_id, level, name) VALUES "
        f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
        f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
    )
    db.execute(
        "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
        "VALUES (%s, 'household', %s, 'H', 30.1, 120.1)",
        (f"{p}hh", f"{p}vi"),
    )
    got: queue.Queue[dict[str, object]] = queue.Queue(maxsize=100)
    subscribed = threading.Event()
    sub = new_connection(BrokerAddress.from_url(mqtt_url), f"{topic_root}-sub2")
    sub.client.on_connect = lambda c, *_: c.subscribe(Topics(topic_root).alerts(), qos=1)
    sub.client.on_subscribe = lambda *_: subscribed.set()
    sub.client.on_message = lambda _c, _u, m: got.put(json.loads(m.payload))
    sub.connect()
    sub.client.loop_start()
    service = AlertPushService(
        PlatformSettings(database_url=database_url, mqtt_url=mqtt_url, topic_root=topic_root)
    )
    try:
        assert subscribed.wait(10)
        service.start()
        # alerts keep coming until the push is listening; the first one seen proves it works
        deadline = threading.Event()
        n = 0
        while got.empty() and n < 100 and not deadline.wait(0.05):
            repo.open_or_refresh(
                db,
                repo.AlertDraft(
                    subject=f"{p}hh-{n}",
                    site_id=f"{p}hh",
                    kind="gas",
                    severity=Severity.CRITICAL,
                    detector="rule:gas",
                    at=T0,
                ),
            )
            n += 1
        note = got.get(timeout=10)
    finally:
        service.stop()
        sub.client.loop_stop()
        sub.client.disconnect()
    assert note["kind"] == "gas" and note["site_id"] == f"{p}hh" and note["change"] == "opened"
    assert service.sent >= 1
