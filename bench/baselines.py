"""Raw baselines measured in the same run as the pipeline.

* ``raw_copy``: the same reading rows written by binary ``COPY`` from Python straight
  into ``readings`` (same indexes, same unique key): the most a Python writer into
  this schema can do on this machine.
* ``raw_broker``: the same MQTT batch messages published QoS 1 and received by one
  subscriber through the same Mosquitto: what the broker and paho alone sustain.
"""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import psycopg

from bench.harness import Stopwatch
from bench.workload import Workload
from carecircle.common.mqtt import BrokerAddress, new_connection

COPY_SQL = (
    "COPY readings (time, received_at, msg_id, gateway_id, device_id, resident_id, site_id, "
    "code, value) FROM STDIN (FORMAT BINARY)"
)
TYPES = ["timestamptz", "timestamptz", "uuid", "text", "text", "text", "text", "text", "float8"]


def raw_copy(database_url: str, workload: Workload) -> dict[str, float]:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE readings")
        conn.commit()
        watch = Stopwatch()
        with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
            copy.set_types(TYPES)
            for row in workload.rows:
                copy.write_row(row)
        conn.commit()
        elapsed = watch.elapsed
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert stored is not None and stored[0] == workload.readings, stored
    return {"readings_per_s": workload.readings / elapsed, "seconds": elapsed}


def raw_broker(
    mqtt_url: str, workload: Workload, root: str, timeout_s: float = 120
) -> dict[str, float]:
    addr = BrokerAddress.from_url(mqtt_url)
    total = len(workload.messages)
    received = 0
    done = threading.Event()
    subscribed = threading.Event()
    lock = threading.Lock()

    sub = new_connection(addr, f"{root}-raw-sub")

    def on_connect(c: mqtt.Client, *_: object) -> None:
        c.subscribe(f"{root}/v1/gw/+/up/+", qos=1)

    def on_subscribe(*_: object) -> None:
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        with lock:
            received += 1
            if received == total:
                done.set()

    sub.client.on_connect = on_connect
    sub.client.on_subscribe = on_subscribe
    sub.client.on_message = on_message
    sub.connect()
    sub.client.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("raw broker baseline: subscription not confirmed")
    pub = new_connection(addr, f"{root}-raw-pub")
    pub.client.max_inflight_messages_set(100)
    pub.connect()
    pub.client.loop_start()
    watch = Stopwatch()
    infos = [pub.client.publish(topic, payload, qos=1) for topic, payload in workload.messages]
    for info in infos:
        info.wait_for_publish(timeout_s)
    finished = done.wait(timeout_s)
    elapsed = watch.elapsed
    for conn in (pub, sub):
        conn.client.loop_stop()
        conn.client.disconnect()
    if not finished:
        raise RuntimeError(f"raw broker baseline: {received}/{total} messages arrived")
    return {
        "messages_per_s": total / elapsed,
        "readings_per_s": workload.readings / elapsed,
        "seconds": elapsed,
    }
