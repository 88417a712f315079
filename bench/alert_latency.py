"""End-to-end alert latency: device SOS published → alert committed → pushed to a subscriber.

Real ``carecircle platform ingest`` workers (with the alert engine as their registered
hand-off) consume a paced background load of gateway-batched readings (default
10,000 readings/s) on a provisioned scratch database.  Meanwhile SOS events — canonical
``event``/``sos`` items, one per gateway batch message, each for a resident without an
open alert — are published at ``sos_per_s``.  A subscriber LISTENs on ``cc_alert`` (the
channel the dashboard's live stream and dispatch follow); the latency of each SOS is
from just before its MQTT publish to the arrival of its ``opened`` notification.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg

from bench.harness import percentile
from bench.ingest_bench import make_messages, publisher, scrape, start_workers, stop_workers
from carecircle.common.contract import Topics, Uplink
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.alerts import repository as repo

BACKGROUND_GATEWAYS = 50  #: gateways bgw0..49 carry the background load
BATCH = 100  #: readings per background message


def sos_message(gateway: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    gw = f"bgw{gateway}"
    item = {
        "v": 1,
        "id": str(uuid.uuid4()),
        "kind": "event",
        "gw": gw,
        "dev": f"{gw}-d0",
        "res": f"br{gateway}",
        "site": f"bhh{gateway}",
        "ts": now,
        "gw_ts": now,
        "payload": {"code": "sos", "value": 1},
    }
    return json.dumps({"v": 1, "gw": gw, "sent_at": now, "items": [item]}).encode()


def run(
    url: str,
    mqtt_url: str,
    sos_gateways: list[int],
    *,
    seconds: float = 15,
    rate: float = 10_000,
    workers: int = 1,
) -> dict[str, float]:
    """One measured run; ``sos_gateways`` are gateways whose residents have no open alert."""
    root = f"bench{uuid.uuid4().hex[:8]}"
    topics = Topics(root)
    procs, ports = start_workers(url, mqtt_url, root, workers, log_name="alert-worker")
    sent: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    listening = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
            listening.set()
            while not stop.is_set():
                for note in conn.notifies(timeout=0.2):
                    arrived = time.perf_counter()
                    body = repo.parse_notification(note.payload)
                    if body["kind"] == "sos" and body["change"] == "opened":
                        with lock:
                            t0 = sent.pop(str(body["resident_id"]), None)
                        if t0 is not None:
                            latencies.append(arrived - t0)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    listening.wait(10)
    total = int(rate * seconds)
    messages, _rows = make_messages(BACKGROUND_GATEWAYS, 4, total, BATCH)
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    bg = ctx.Process(
        target=publisher,
        args=(mqtt_url, root, messages, ready, go, len(messages), rate / BATCH),
    )
    bg.start()
    ready.wait(30)
    pub = new_connection(BrokerAddress.from_url(mqtt_url), f"{root}-sos")
    pub.connect()
    pub.client.loop_start()
    go.set()
    started = time.perf_counter()
    time.sleep(1.0)  # the background load is flowing before the first SOS
    interval = (seconds - 2.0) / max(1, len(sos_gateways))
    for n, g in enumerate(sos_gateways):
        wait = started + 1.0 + n * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        payload = sos_message(g)
        with lock:
            sent[f"br{g}"] = time.perf_counter()
        pub.client.publish(topics.uplink(f"bgw{g}", Uplink.BATCH), payload, qos=1)
    bg.join(seconds + 60)
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + 10  # the last SOS alerts may still be on their way
    while time.monotonic() < deadline:
        with lock:
            if not sent:
                break
        time.sleep(0.1)
    written = scrape(ports)
    stop.set()
    listener.join(5)
    pub.client.disconnect()
    pub.client.loop_stop()
    stop_workers(procs)
    if not latencies:
        raise RuntimeError("alert latency: no SOS alert arrived (see bench/results/alert-worker*)")
    ms = [x * 1000 for x in latencies]
    return {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "sos_sent": float(len(sos_gateways)),
        "sos_alerted": float(len(ms)),
        "background_readings_per_s": written / elapsed,
    }


def population_size(runs: int, sos_per_run: int) -> int:
    """Gateways to provision: the background ones plus a fresh one per SOS."""
    return BACKGROUND_GATEWAYS + runs * sos_per_run


def sos_batches(runs: int, sos_per_run: int) -> list[list[int]]:
    first = BACKGROUND_GATEWAYS
    return [
        list(range(first + r * sos_per_run, first + (r + 1) * sos_per_run)) for r in range(runs)
    ]
