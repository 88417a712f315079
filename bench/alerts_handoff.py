"""Bench: alert engine hand-off under ingest load, on the real PostgreSQL.

What it measures (the part of "device publish → alert committed and pushed" that the
alerts branch owns): ``W`` worker threads each act like an ingest worker — store a
batch of readings/events (COPY, committed), then call ``AlertEngine.on_committed`` —
at a target total rate (default 10,000 items/s).  Among the routine readings, SOS
events are injected; a separate connection LISTENs on ``cc_alert`` and the latency
from the moment an SOS envelope is created (before it is stored) to its ``opened``
notification arriving is recorded.  Also reported: engine time per item and the store
reads for vitals windows.  MQTT, the gateway and ingest decoding are not included
(they live on other branches); the lead's end-to-end bench adds them.

    .venv/bin/python bench/alerts_handoff.py --seconds 20 --rate 10000 --workers 4

Results go to ``bench/results/alerts_handoff.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from carecircle.common.contract import Code, Envelope, Kind, Payload
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.engine import AlertEngine
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_db() -> tuple[str, str]:
    name = f"cc_bench_alerts_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return name, url


def provision(url: str, homes: int) -> list[dict[str, str]]:
    out = []
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES "
            "('pf', NULL, 'prefecture', 'P'), ('co', 'pf', 'county', 'C'), "
            "('tw', 'co', 'township', 'T'), ('vi', 'tw', 'village', 'V')"
        )
        for i in range(homes):
            hh, r, gw = f"hh{i}", f"r{i}", f"gw{i}"
            c.execute(
                "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
                "VALUES (%s, 'household', 'vi', 'H', 30, 120)",
                (hh,),
            )
            for room, kind in (("bed", "bedroom"), ("bath", "bathroom"), ("liv", "living_room")):
                c.execute(
                    "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s)",
                    (f"{hh}-{room}", hh, kind, room),
                )
            c.execute(
                "INSERT INTO residents (id, site_id, display_name) VALUES (%s, %s, 'X')", (r, hh)
            )
            c.execute("INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (gw, hh))
            out.append({"site": hh, "res": r, "gw": gw})
    return out


def routine(home: dict[str, str], now: datetime, rng: random.Random) -> Envelope:
    pick = rng.random()
    if pick < 0.5:
        code, value, dev, room, res = Code.HEART_RATE, rng.gauss(72, 8), "band", None, home["res"]
        if rng.random() < 0.002:
            value = 135.0  # a crossing: the engine reads the window from the store
    elif pick < 0.7:
        code, value, dev, room, res = Code.SPO2, rng.gauss(96, 1), "band", None, home["res"]
    elif pick < 0.9:
        code, value, dev, room, res = Code.MOTION, float(rng.random() < 0.3), "pir", "liv", None
    else:
        code, value, dev, room, res = Code.ROOM_TEMPERATURE, rng.gauss(20, 1), "th", "liv", None
    value = max(51.0, min(99.0, value)) if code is Code.SPO2 else value
    return Envelope(
        id=uuid.uuid4(),
        kind=Kind.READING,
        gw=home["gw"],
        dev=f"{home['site']}-{dev}",
        res=res,
        site=home["site"],
        room=f"{home['site']}-{room}" if room else None,
        ts=now,
        gw_ts=now,
        payload=Payload(code=code, value=round(value, 1)),
    )


def store(conn: psycopg.Connection[tuple[object, ...]], items: list[Envelope]) -> None:
    now = datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            "COPY readings (time, received_at, msg_id, gateway_id, device_id, "
            "resident_id, site_id, code, value) FROM STDIN"
        ) as cp:
            for e in items:
                if e.kind is Kind.READING:
                    cp.write_row(
                        (
                            e.ts,
                            now,
                            e.id,
                            e.gw,
                            e.dev,
                            e.res,
                            e.site,
                            e.payload.code.value,
                            e.payload.value,
                        )
                    )
        with cur.copy(
            "COPY events (time, received_at, msg_id, gateway_id, device_id, "
            "resident_id, site_id, kind, code, value) FROM STDIN"
        ) as cp:
            for e in items:
                if e.kind is not Kind.READING:
                    cp.write_row(
                        (
                            e.ts,
                            now,
                            e.id,
                            e.gw,
                            e.dev,
                            e.res,
                            e.site,
                            e.kind.value,
                            e.payload.code.value,
                            e.payload.value,
                        )
                    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rate", type=int, default=10_000, help="items per second, all workers")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--homes", type=int, default=500)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--sos-per-s", type=float, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench/results/alerts_handoff.json"))
    args = ap.parse_args()
    name, url = make_db()
    homes = provision(url, args.homes)
    created: dict[str, float] = {}  # resident -> perf_counter when its SOS was made
    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"LISTEN {repo.NOTIFY_CHANNEL}")
            while not stop.is_set():
                for n in c.notifies(timeout=0.2):
                    t = time.perf_counter()
                    note = repo.parse_notification(n.payload)
                    if note["kind"] == "sos" and note["change"] == "opened":
                        with lock:
                            t0 = created.pop(str(note["resident_id"]), None)
                        if t0 is not None:
                            latencies.append(t - t0)

    engines: list[AlertEngine] = []
    handoff_s = [0.0] * args.workers
    counts = [0] * args.workers

    def work(idx: int) -> None:
        rng = random.Random(idx)
        eng = AlertEngine(
            connect=lambda: psycopg.connect(url, autocommit=True), tz=ZoneInfo("Asia/Shanghai")
        )
        engines.append(eng)
        per_worker = args.rate / args.workers
        interval = args.batch / per_worker
        sos_p = args.sos_per_s / args.workers * interval
        next_t = time.perf_counter()
        sim_now = datetime.now(UTC)
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                items = [routine(rng.choice(homes), sim_now, rng) for _ in range(args.batch)]
                if rng.random() < sos_p:
                    home = rng.choice(homes)
                    with lock:
                        fresh = home["res"] not in created
                        if fresh:
                            created[home["res"]] = time.perf_counter()
                    if fresh:
                        items.append(
                            Envelope(
                                id=uuid.uuid4(),
                                kind=Kind.EVENT,
                                gw=home["gw"],
                                dev=f"{home['site']}-sos",
                                res=home["res"],
                                site=home["site"],
                                ts=sim_now,
                                gw_ts=sim_now,
                                payload=Payload(code=Code.SOS, value=1),
                            )
                        )
                store(conn, items)
                t = time.perf_counter()
                eng.on_committed(items)
                handoff_s[idx] += time.perf_counter() - t
                counts[idx] += len(items)
                sim_now += timedelta(milliseconds=50)
                next_t += interval
                delay = next_t - time.perf_counter()
                if delay > 0:
                    stop.wait(delay)
        eng.close()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.3)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.perf_counter() - start
    listener.join(timeout=5)
    total = sum(counts)
    lat = sorted(latencies)

    def pct(p: float) -> float | None:
        return lat[max(0, round(p / 100 * len(lat)) - 1)] * 1000 if lat else None

    stats = [e.stats.as_dict() for e in engines]
    result = {
        "workers": args.workers,
        "target_rate": args.rate,
        "achieved_rate": total / elapsed,
        "items": total,
        "seconds": elapsed,
        "engine_us_per_item": 1e6 * sum(handoff_s) / max(total, 1),
        "engine_share_of_worker_time": sum(handoff_s) / (elapsed * args.workers),
        "sos_alerts": len(lat),
        "sos_latency_ms": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "max": lat[-1] * 1000 if lat else None,
            "mean": statistics.fmean(lat) * 1000 if lat else None,
        },
        "window_queries": sum(s["window_queries"] for s in stats),
        "window_query_ms_mean": 1000
        * sum(s["window_query_s"] for s in stats)
        / max(1, sum(s["window_queries"] for s in stats)),
        "engine_errors": sum(s["errors"] for s in stats),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
