"""End-to-end ingest throughput: gateway-batched MQTT messages → rows committed.

Runs on this machine's broker and PostgreSQL (a scratch database, dropped afterwards):

1. provisions ``--gateways`` × ``--devices`` devices and pre-encodes ``--readings``
   readings as canonical batches of ``--batch`` items (encoding is not timed: it is
   the gateways' work);
2. **baseline**: a raw binary COPY of the same rows (already built, no decoding, no
   idempotency) into ``readings``, one transaction per ``--batch * 20`` rows;
3. **end to end** with 1 and with 2 ``carecircle platform ingest`` worker processes on
   the shared subscription: a publisher process sends every message (QoS 1) as fast as
   the broker takes them; the clock runs from the first publish until the workers'
   ``cc_ingest_rows_written_total`` (scraped from /metrics) reaches the total, which
   is then checked against ``count(*)``;
4. samples the workers' RSS every second (``--duration`` > 0 repeats the load for that
   many seconds to show memory stays flat).

Prints one JSON object; ``--out`` also writes it (bench/results/ is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg import sql

from carecircle.common.contract import (
    DeviceBinding,
    DeviceSpec,
    GatewaySpec,
    PlaceSpec,
    Provisioning,
    ResidentSpec,
    SiteSpec,
    Topics,
    Uplink,
    new_id,
)
from carecircle.common.mqtt import BrokerAddress, new_connection
from carecircle.platform.registry import provision
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

ROOT = Path(__file__).resolve().parent.parent
CODES = [("heart_rate", 60, 40), ("spo2", 92, 8), ("skin_temperature", 32, 3), ("steps", 0, 30)]


def population(gateways: int, devices: int) -> Provisioning:
    places = [
        PlaceSpec(id="bpf", level="prefecture", name="P", lat=30, lon=120),
        PlaceSpec(id="bco", parent_id="bpf", level="county", name="C", lat=30, lon=120),
        PlaceSpec(id="btw", parent_id="bco", level="township", name="T", lat=30, lon=120),
        PlaceSpec(id="bvi", parent_id="btw", level="village", name="V", lat=30, lon=120),
    ]
    sites, residents, gws, devs = [], [], [], []
    for g in range(gateways):
        sites.append(
            SiteSpec(id=f"bhh{g}", kind="household", place_id="bvi", name="H", lat=30, lon=120)
        )
        residents.append(ResidentSpec(id=f"br{g}", site_id=f"bhh{g}", display_name="E"))
        gws.append(GatewaySpec(id=f"bgw{g}", site_id=f"bhh{g}"))
        for d in range(devices):
            devs.append(
                DeviceSpec(
                    gateway_id=f"bgw{g}",
                    binding=DeviceBinding(
                        id=f"bgw{g}-d{d}",
                        family="wearable",
                        native_id=f"N{g}-{d}",
                        site=f"bhh{g}",
                        res=f"br{g}",
                        type="wearable",
                    ),
                )
            )
    return Provisioning(places=places, sites=sites, residents=residents, gateways=gws, devices=devs)


def make_messages(
    gateways: int, devices: int, total: int, per_batch: int
) -> tuple[list[tuple[str, bytes]], list[tuple[Any, ...]]]:
    """Encoded batches (topic-less: gateway id + payload) and the same rows for COPY."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=6)
    messages: list[tuple[str, bytes]] = []
    rows: list[tuple[Any, ...]] = []
    per_gw = total // gateways
    step = timedelta(hours=5) / per_gw
    for g in range(gateways):
        gw = f"bgw{g}"
        for k in range(0, per_gw, per_batch):
            items = []
            for i in range(k, min(k + per_batch, per_gw)):
                code, base, spread = CODES[i % len(CODES)]
                ts = start + i * step
                # ids as gateways make them (UUIDv7, time-ordered), their last 8 hex
                # digits zero; each repeat round rewrites those (--duration)
                mid = uuid.UUID(int=new_id().int & ~0xFFFF_FFFF)
                value = base + (i * 7919) % (spread + 1)
                dev = f"{gw}-d{i % devices}"
                items.append(
                    {
                        "v": 1,
                        "id": str(mid),
                        "kind": "reading",
                        "gw": gw,
                        "dev": dev,
                        "res": f"br{g}",
                        "site": f"bhh{g}",
                        "ts": ts.isoformat(),
                        "gw_ts": ts.isoformat(),
                        "payload": {"code": code, "value": value},
                    }
                )
                rows.append((ts, now, mid, gw, dev, f"br{g}", f"bhh{g}", code, float(value)))
            payload = json.dumps(
                {"v": 1, "gw": gw, "sent_at": now.isoformat(), "items": items}
            ).encode()
            messages.append((gw, payload))
    return messages, rows


def raw_copy(url: str, rows: list[tuple[Any, ...]], chunk: int) -> float:
    cols = "time, received_at, msg_id, gateway_id, device_id, resident_id, site_id, code, value"
    types = ["timestamptz", "timestamptz", "uuid", "text", "text", "text", "text", "text", "float8"]
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        for k in range(0, len(rows), chunk):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY readings ({cols}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(types)
                for row in rows[k : k + chunk]:
                    copy.write_row(row)
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE readings")
    return len(rows) / elapsed


def publisher(
    mqtt_url: str,
    root: str,
    messages: list[tuple[str, bytes]],
    ready: Any,
    go: Any,
    per_round: int,
    msgs_per_s: float,
) -> None:
    topics = Topics(root)
    conn = new_connection(BrokerAddress.from_url(mqtt_url))
    conn.client.max_inflight_messages_set(100)
    conn.client.max_queued_messages_set(200)
    conn.connect()
    conn.client.loop_start()
    ready.set()
    go.wait()
    infos: list[mqtt.MQTTMessageInfo] = []
    started = time.perf_counter()
    for n, (gw, payload) in enumerate(messages):
        if msgs_per_s > 0:  # paced: a steady population, not a burst the broker must queue
            wait = started + n / msgs_per_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        rnd = n // per_round
        if rnd:  # a repeat round: fresh message ids, so the rows are new
            payload = payload.replace(b'00000000", "kind"', b'%08x", "kind"' % rnd)
        infos.append(conn.client.publish(topics.uplink(gw, Uplink.BATCH), payload, qos=1))
        if len(infos) > 150:
            infos.pop(0).wait_for_publish(60)
    for info in infos:
        info.wait_for_publish(60)
    conn.client.disconnect()
    conn.client.loop_stop()


def scrape(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            continue
        for line in text.decode().splitlines():
            if line.startswith('cc_ingest_rows_written_total{table="readings"}'):
                total += float(line.split()[-1])
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_workers(
    url: str, mqtt_url: str, root: str, workers: int, log_name: str = "ingest-worker"
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """Start ``workers`` ``platform ingest`` processes; return once all serve /metrics."""
    ports = [free_port() for _ in range(workers)]
    procs = []
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    for w, port in enumerate(ports):
        env = dict(os.environ)
        env.update(
            {
                "CARECIRCLE_DATABASE_URL": url,
                "CARECIRCLE_MQTT_URL": mqtt_url,
                "CARECIRCLE_TOPIC_ROOT": root,
                "CARECIRCLE_INGEST_WORKER_ID": str(w),
                "CARECIRCLE_METRICS_PORT": str(port),
                "CARECIRCLE_INGEST_SESSION_EXPIRY_S": "30",
                "CARECIRCLE_LOG_LEVEL": "INFO",
            }
        )
        procs.append(
            subprocess.Popen(
                [str(Path(sys.executable).parent / "carecircle"), "platform", "ingest"],
                env=env,
                stdout=(ROOT / "bench" / "results" / f"{log_name}-{workers}-{w}.log").open("w"),
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # every worker is up (it subscribes before serving)
        try:
            for port in ports:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        stop_workers(procs)
        raise RuntimeError("ingest workers did not start within 60 s (see bench/results/*.log)")
    time.sleep(2.0)
    return procs, ports


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def end_to_end(
    url: str,
    workers: int,
    messages: list[tuple[str, bytes]],
    total: int,
    *,
    mqtt_url: str = "mqtt://127.0.0.1:1883",
    batch: int = 500,
    duration: float = 0,
    rate_hint: float = 15_000,
    timeout: float = 900,
) -> dict[str, Any]:
    """Start ``workers`` ingest processes, publish ``messages``, time until all rows are written.

    Callable from ``bench.run``; ``main`` below is the stand-alone command.
    """
    args = argparse.Namespace(
        mqtt_url=mqtt_url, batch=batch, duration=duration, rate_hint=rate_hint, timeout=timeout
    )
    root = f"bench{uuid.uuid4().hex[:8]}"
    procs, ports = start_workers(url, mqtt_url, root, workers)
    ctx = mp.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    sent_total = total
    rounds = 1
    if args.duration > 0:
        rounds = max(1, int(args.duration * args.rate_hint / total))
        sent_total = total * rounds
    pub = ctx.Process(
        target=publisher,
        args=(
            args.mqtt_url,
            root,
            messages * rounds,
            ready,
            go,
            len(messages),
            args.rate_hint / args.batch if args.duration > 0 else 0.0,
        ),
    )
    pub.start()
    ready.wait(30)
    rss: list[tuple[float, list[float]]] = []
    cpu0 = sum(cpu_s(p.pid) for p in procs)
    t0 = time.perf_counter()
    go.set()
    written = 0.0
    last_sample = 0.0
    while written < sent_total:
        time.sleep(0.25)
        written = scrape(ports)
        now = time.perf_counter() - t0
        if now - last_sample >= 1.0:
            rss.append((round(now, 1), [round(rss_mb(p.pid), 1) for p in procs]))
            last_sample = now
        if now > args.timeout:
            break
    elapsed = time.perf_counter() - t0
    # the workers' own CPU per stored reading: what the pipeline costs, whatever else runs
    cpu = sum(cpu_s(p.pid) for p in procs) - cpu0
    pub.join(60)
    stop_workers(procs)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT msg_id) FROM readings").fetchone()
        conn.execute("TRUNCATE readings")
        conn.execute("TRUNCATE rollup_dirty")
    assert row is not None
    return {
        "workers": workers,
        "readings": sent_total,
        "stored": row[0] if rounds == 1 else None,
        "distinct": row[1] if rounds == 1 else None,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(written / elapsed),
        "worker_cpu_us_per_reading": round(1e6 * cpu / written, 2) if written else None,
        "rss_mb_first_last": [rss[0][1], rss[-1][1]] if rss else None,
        "rss_mb_samples": rss if args.duration > 0 else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--gateways", type=int, default=50)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--readings", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500, help="readings per MQTT message")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--duration", type=float, default=0, help="repeat the load ~this long (s)")
    ap.add_argument(
        "--rate-hint",
        type=float,
        default=15_000,
        help="with --duration: publish at this steady rate (readings/s); Mosquitto drops what "
        "exceeds max_queued_messages (default 1000 per client) in a burst",
    )
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    dbname = f"cc_ingest_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = args.pg_url.rsplit("/", 1)[0] + "/" + dbname
    try:
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
            provision(conn, population(args.gateways, args.devices))
        messages, rows = make_messages(args.gateways, args.devices, args.readings, args.batch)
        total = len(rows)
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
            "readings": total,
            "messages": len(messages),
            "batch": args.batch,
        }
        result["raw_copy_rows_per_s"] = round(raw_copy(url, rows, args.batch * 20))
        del rows
        runs = []
        for n in [int(x) for x in args.workers.split(",")]:
            run = end_to_end(
                url,
                n,
                messages,
                total,
                mqtt_url=args.mqtt_url,
                batch=args.batch,
                duration=args.duration,
                rate_hint=args.rate_hint,
                timeout=args.timeout,
            )
            run["ratio_to_raw_copy"] = round(
                run["readings_per_s"] / result["raw_copy_rows_per_s"], 3
            )
            runs.append(run)
        result["end_to_end"] = runs
        result["machine"]["loadavg_at_end"] = os.getloadavg()
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
