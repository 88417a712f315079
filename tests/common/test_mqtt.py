"""The broker speaks MQTT 5 with shared subscriptions, through our connection helper."""

from __future__ import annotations

import queue
import threading

import paho.mqtt.client as mqtt

from carecircle.common.mqtt import BrokerAddress, new_connection


def test_shared_subscription_splits_messages(mqtt_url: str, topic_root: str) -> None:
    addr = BrokerAddress.from_url(mqtt_url)
    got: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=1000)
    subscribed = threading.Barrier(3, timeout=10)
    workers = []
    for name in ("w1", "w2"):
        conn = new_connection(addr, f"{topic_root}-{name}")

        def on_connect(c: mqtt.Client, *_: object) -> None:
            c.subscribe(f"$share/ingest/{topic_root}/x/+", qos=1)

        def on_subscribe(*_: object) -> None:
            subscribed.wait()

        def on_message(c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage, name: str = name) -> None:
            got.put((name, msg.payload))

        conn.client.on_connect = on_connect
        conn.client.on_subscribe = on_subscribe
        conn.client.on_message = on_message
        conn.connect()
        conn.client.loop_start()
        workers.append(conn)
    subscribed.wait()
    pub = new_connection(addr, f"{topic_root}-pub")
    pub.connect()
    pub.client.loop_start()
    for i in range(40):
        pub.client.publish(f"{topic_root}/x/{i % 4}", str(i).encode(), qos=1).wait_for_publish(5)
    received = [got.get(timeout=10) for _ in range(40)]
    for c in [*workers, pub]:
        c.client.loop_stop()
        c.client.disconnect()
    assert sorted(int(p) for _, p in received) == list(range(40))
    assert {n for n, _ in received} == {"w1", "w2"}, "both shared subscribers get a share"
    assert got.empty()


def test_broker_address_hides_password() -> None:
    addr = BrokerAddress.from_url("mqtts://gw-1:s3cret@broker.example:8883")
    assert addr.tls and addr.port == 8883 and addr.password == "s3cret"
    assert "s3cret" not in str(addr)
