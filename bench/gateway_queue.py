"""Gateway throughput: durable enqueue rate and catch-up publish rate after an outage.

    .venv/bin/python bench/gateway_queue.py [--mqtt-url mqtt://127.0.0.1:1883] [--n 20000]

1. ``enqueue``: one native zigbee2mqtt message → adapter → validated envelopes →
   one committed SQLite transaction (what happens per device message), with
   ``synchronous=FULL`` and ``NORMAL``.
2. ``catch-up``: a backlog of N routine readings (plus a few alarms) drained to a
   real broker, QoS 1, each row deleted after its PUBACK; readings/s until empty.

Results go to bench/results/gateway_queue.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from carecircle.common.contract import DeviceBinding, GatewayConfig, Topics
from carecircle.common.mqtt import BrokerAddress
from carecircle.gateway.outbox import Lane, Outbox
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings
from carecircle.gateway.uplink import UplinkOptions, UplinkSender

CONFIG = GatewayConfig(
    gw="gw-bench",
    site="hh-1",
    version=1,
    devices=[
        DeviceBinding(
            id="dev-th", family="zigbee2mqtt", native_id="climate", site="hh-1", type="climate"
        )
    ],
)


def bench_enqueue(tmp: Path, synchronous: str, n: int) -> float:
    settings = GatewaySettings.model_validate(
        {
            "gateway_id": "gw-bench",
            "queue_path": tmp / f"enqueue-{synchronous}.sqlite3",
            "queue_synchronous": synchronous,
        }
    )
    gw = Gateway(settings)
    gw.use_config(CONFIG)
    start = time.perf_counter()
    for i in range(n):
        payload = json.dumps({"temperature": 20 + (i % 100) / 10, "humidity": 40}).encode()
        gw.handle_native("zigbee2mqtt/climate", payload)
    elapsed = time.perf_counter() - start
    assert len(gw.outbox) == 2 * n
    gw.outbox.close()
    return n / elapsed


def bench_catch_up(tmp: Path, mqtt_url: str, n: int, batch: int) -> dict[str, float]:
    settings = GatewaySettings.model_validate(
        {
            "gateway_id": "gw-bench",
            "queue_path": tmp / f"catchup-{batch}.sqlite3",
            "queue_synchronous": "NORMAL",
        }
    )
    gw = Gateway(settings)
    gw.use_config(CONFIG)
    for i in range(n // 2):
        payload = json.dumps({"temperature": 20 + (i % 100) / 10, "humidity": 40}).encode()
        gw.handle_native("zigbee2mqtt/climate", payload)
    backlog = len(gw.outbox)
    outbox: Outbox = gw.outbox
    root = f"bench{uuid.uuid4().hex[:8]}"
    sender = UplinkSender(
        UplinkOptions(
            gateway_id="gw-bench",
            topics=Topics(root),
            address=BrokerAddress.from_url(mqtt_url),
            batch_max_items=batch,
            wait_for_ingest=False,  # measures the uplink alone, no ingest worker
        ),
        outbox,
    )
    start = time.perf_counter()
    sender.start()
    deadline = time.monotonic() + 300
    while outbox.depth()[Lane.ROUTINE] and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    sender.stop()
    outbox.close()
    return {"readings": backlog, "seconds": elapsed, "readings_per_s": backlog / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--n", type=int, default=20000, help="catch-up backlog (readings)")
    parser.add_argument("--enqueue-n", type=int, default=2000, help="native messages to enqueue")
    args = parser.parse_args()
    out: dict[str, object] = {"at": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for mode in ("FULL", "NORMAL"):
            rate = bench_enqueue(tmp, mode, args.enqueue_n)
            out[f"enqueue_msgs_per_s_{mode.lower()}"] = round(rate, 1)
            print(f"enqueue (synchronous={mode}): {rate:,.0f} native messages/s (2 readings each)")
        for batch in (100, 500):
            r = bench_catch_up(tmp, args.mqtt_url, args.n, batch)
            out[f"catch_up_batch_{batch}"] = {k: round(v, 2) for k, v in r.items()}
            print(
                f"catch-up (batch {batch}): {r['readings']:.0f} readings in {r['seconds']:.2f} s "
                f"= {r['readings_per_s']:,.0f} readings/s"
            )
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "gateway_queue.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
