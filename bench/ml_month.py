"""The ml must-show: a held-out simulated month from device_sim, rules vs rules + models.

    .venv/bin/python bench/ml_month.py --db postgresql://postgres@127.0.0.1:5432/postgres \\
        --households 60 --seed 8101 --history-days 17 --days 30 --out var/ml-month

One continuous ``device_sim`` run (population and simulation seed ``--seed``) of
``--history-days`` + ``--days`` days, replayed on a virtual clock into a scratch
database (``--dbname``, created and migrated here, kept for ``carecircle eval``):

* every native message goes through the gateway's adapters and normaliser (one
  registry with every provisioned device; each envelope carries its device's gateway);
* envelopes are stored as ingest's writer stores them (COPY into ``readings`` /
  ``events``, the minute buckets marked in ``rollup_dirty``), devices' and gateways'
  ``last_seen`` moved, every ``--step-s`` of simulated time — without the uplink JSON
  round trip and MQTT (their speed is not what this measures);
* from one day before the split the alert engine gets every stored batch
  (``AlertEngine.on_committed``, virtual clock), so its ``activity_state`` is warm;
* at the split (end of the history) the rollups are refreshed and ``train()`` fits
  every resident's models from the store (window: the history only); the models are
  then frozen — the nightly job is not run during the held-out month, so no model
  ever sees it;
* during the held-out month: absence checks (``run_absence_checks``) every
  ``--step-s``, rollups and ``score_hour()`` at minute 5 of every hour;
* a caregiver closes every human-facing alert (rule or model) ``--resolve-after-min``
  after it opened (``resolved``, ``resident_fine``).  Without this an alert nobody
  closes stays the one active alert of its (resident, kind) for the whole month, and
  every later incident of that kind only refreshes it.

Writes ``truth.jsonl`` (ground truth of the whole run) and ``summary.json`` to
``--out`` and prints the ``carecircle eval`` command for the held-out month.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from carecircle.common.clock import ManualClock
from carecircle.common.contract import Envelope, Kind
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.incidents.model import count_by_kind
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.gateway.adapters import Bases
from carecircle.gateway.pipeline.normalise import Normaliser
from carecircle.gateway.registry.registry import Registry
from carecircle.ml.registry.store import ModelRegistry
from carecircle.ml.scoring.live import score_hour
from carecircle.ml.training.core import TrainConfig
from carecircle.ml.training.jobs import train
from carecircle.platform.alerts.engine import AlertEngine
from carecircle.platform.alerts.jobs import run_absence_checks
from carecircle.platform.alerts.kinds import TECHNICAL
from carecircle.platform.alerts.lifecycle import Outcome, Status
from carecircle.platform.alerts.repository import transition
from carecircle.platform.ingest import copyrows
from carecircle.platform.registry.service import provision
from carecircle.platform.rollups import refresh_rollups
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

TZ = ZoneInfo("Asia/Shanghai")
log = logging.getLogger("ml_month")


class Store:
    """Stores envelopes as the ingest writer does (same columns, same dirty marks)."""

    def __init__(self, conn: Any, residents: dict[str, str | None], sites: dict[str, str]) -> None:
        self.conn = conn
        self.res = residents
        self.site = sites
        self.readings = 0
        self.events = 0

    def write(self, envs: list[Envelope], received: datetime) -> None:
        readings: list[bytes] = []
        events: list[bytes] = []
        minutes: set[datetime] = set()
        seen: dict[str, datetime] = {}
        gateways: set[str] = set()
        received_us = copyrows.pg_micros(received)
        for e in envs:
            device = copyrows.device_fields(e.gw, e.dev, self.res[e.dev], self.site[e.dev])
            p = e.payload
            row = (copyrows.pg_micros(e.ts), received_us, e.id.int, p.value, device, p.code)
            if e.kind is Kind.READING:
                readings.append(copyrows.reading(*row))
                minutes.add(e.ts.replace(second=0, microsecond=0))
            else:
                events.append(copyrows.event(*row, e.kind, p.attrs))
            if e.kind is not Kind.STATUS or p.code.value != "availability":
                seen[e.dev] = max(seen.get(e.dev, e.ts), e.ts)
            gateways.add(e.gw)
        with self.conn.transaction():
            with self.conn.cursor() as cur:
                if readings:
                    copyrows.copy_in(cur, "readings", copyrows.READING_COLUMNS, readings)
                if events:
                    copyrows.copy_in(cur, "events", copyrows.EVENT_COLUMNS, events)
            if minutes:
                self.conn.execute(
                    "INSERT INTO rollup_dirty (bucket) SELECT unnest(%s::timestamptz[]) "
                    "ON CONFLICT DO NOTHING",
                    (sorted(minutes),),
                )
            if seen:
                self.conn.execute(
                    "UPDATE devices d SET last_seen = GREATEST(d.last_seen, v.at), "
                    "status = 'online' FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, at) "
                    "WHERE d.id = v.id",
                    (list(seen), list(seen.values())),
                )
            if gateways:
                self.conn.execute(
                    "UPDATE gateways SET last_seen = %s, status = 'online' WHERE id = ANY(%s)",
                    (received, sorted(gateways)),
                )
        self.readings += len(readings)
        self.events += len(events)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True, help="admin URL (a scratch database is created)")
    ap.add_argument("--dbname", default="ml_month")
    ap.add_argument("--households", type=int, default=60)
    ap.add_argument("--seed", type=int, default=8101)
    ap.add_argument("--start", default="2026-03-02T00:00:00+08:00")
    ap.add_argument("--history-days", type=int, default=17)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--incident-scale", type=float, default=1.0)
    ap.add_argument("--step-s", type=int, default=300)
    ap.add_argument("--resolve-after-min", type=int, default=60)
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="reuse --dbname: drop the model alerts and models, train at the split again "
        "and score the held-out month from the stored rollups (rule alerts are kept)",
    )
    ap.add_argument("--out", type=Path, default=Path("var/ml-month"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    start = datetime.fromisoformat(args.start)
    split = start + timedelta(days=args.history_days)
    end = split + timedelta(days=args.days)
    if args.rescore:
        rescore(args, split, end)
        return
    with psycopg.connect(args.db, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.dbname)))
    url = psycopg.conninfo.make_conninfo(args.db, dbname=args.dbname)
    conn = connect(url, autocommit=True)
    migrate(conn, now=start, retention=Retention.days(3650, 3650))
    pop = generate_population(PopulationParams(args.households, 0, 0, args.seed))
    provision(conn, pop)
    registry_dir = args.out / "registry"
    registry = ModelRegistry(registry_dir)

    by_native = {(d.binding.family, d.binding.native_id): d.binding for d in pop.devices}
    from types import MappingProxyType

    registry_gw = Registry("gw-sim", "sim", 0, MappingProxyType(by_native))
    gateway_of = {d.binding.id: d.gateway_id for d in pop.devices}
    store = Store(
        conn,
        {d.binding.id: d.binding.res for d in pop.devices},
        {d.binding.id: d.binding.site for d in pop.devices},
    )
    normaliser = Normaliser("gw-sim", Bases())
    clock = ManualClock(start.astimezone(UTC))
    engine = AlertEngine(
        connect=lambda: connect(url, autocommit=True), tz=TZ, clock=clock, cache_ttl_s=1e9
    )
    config = SimConfig(seed=args.seed, incident_scale=args.incident_scale)
    start_ms = int(start.timestamp() * 1000)
    sim = Simulation(build_world(pop, config), start_ms, int(end.timestamp() * 1000))

    timings: dict[str, float] = {
        "normalise": 0.0,
        "store": 0.0,
        "engine": 0.0,
        "checks": 0.0,
        "rollups": 0.0,
        "score": 0.0,
    }
    score_ms: list[float] = []
    pending: list[Envelope] = []
    step = timedelta(seconds=args.step_s)
    next_flush = start.astimezone(UTC) + timedelta(hours=1)
    next_score = (split + timedelta(minutes=5)).astimezone(UTC)
    warm = split - timedelta(days=1)
    technical = sorted(k.value for k in TECHNICAL)
    resolve_after = timedelta(minutes=args.resolve_after_min)
    trained: dict[str, Any] = {}
    messages = 0
    t_run = time.perf_counter()

    def flush(at: datetime) -> None:
        nonlocal next_score
        clock.set(at)
        t0 = time.perf_counter()
        envs = [e.model_copy(update={"gw": gateway_of[e.dev]}) for e in pending]
        store.write(envs, at)
        pending.clear()
        timings["store"] += time.perf_counter() - t0
        if at >= warm:
            t0 = time.perf_counter()
            for k in range(0, len(envs), 2000):
                engine.on_committed(envs[k : k + 2000])
            timings["engine"] += time.perf_counter() - t0
        if at >= split and not trained:
            t0 = time.perf_counter()
            while refresh_rollups(conn, at).minute_buckets:
                pass
            timings["rollups"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            report = train(conn, registry, TrainConfig(), until=split)
            trained.update(report.summary())
            trained["train_seconds"] = time.perf_counter() - t0
            print(f"trained at {split.isoformat()}: {json.dumps(trained)[:400]}", flush=True)
        if at >= split:
            t0 = time.perf_counter()
            run_absence_checks(conn, at, TZ)
            for (alert_id,) in conn.execute(
                "SELECT id FROM alerts WHERE status NOT IN ('resolved', 'cancelled') "
                "AND NOT kind = ANY(%s) AND opened_at <= %s ORDER BY id",
                (technical, at - resolve_after),
            ).fetchall():
                transition(
                    conn,
                    int(alert_id),
                    Status.RESOLVED,
                    actor="replay:caregiver",
                    at=at,
                    outcome=Outcome.RESIDENT_FINE,
                )
            timings["checks"] += time.perf_counter() - t0
            if at >= next_score:
                t0 = time.perf_counter()
                while refresh_rollups(conn, at).minute_buckets:
                    pass
                timings["rollups"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                rep = score_hour(conn, registry, at, TZ)
                timings["score"] += time.perf_counter() - t0
                score_ms.extend(rep.latency_ms)
                next_score += timedelta(hours=1)

    try:
        for t_ms, topic, payload, _retain in sim:
            at = datetime.fromtimestamp(t_ms / 1000, UTC)
            while at >= next_flush:
                flush(next_flush)
                # the history is stored hourly; from the warm-up on, every step
                next_flush += step if next_flush >= warm else timedelta(hours=1)
            messages += 1
            t0 = time.perf_counter()
            out = normaliser.process(topic, payload.encode(), registry_gw, at)
            if out.learned or out.forget:
                registry_gw = registry_gw.with_ha(out.learned, out.forget)
            pending.extend(out.envelopes)
            timings["normalise"] += time.perf_counter() - t0
            if messages % 200_000 == 0:
                print(
                    f"{at.astimezone(TZ):%Y-%m-%d %H:%M} {messages} messages, "
                    f"{time.perf_counter() - t_run:.0f} s, "
                    f"{json.dumps({k: round(v) for k, v in timings.items()})}",
                    flush=True,
                )
        flush(next_flush)
    finally:
        engine.close()

    incidents = sim.incidents()
    truth = args.out / "truth.jsonl"
    truth.write_text("".join(i.to_json() + "\n" for i in incidents), encoding="utf-8")
    held = [i for i in incidents if split.timestamp() * 1000 <= i.start_ms < end.timestamp() * 1000]
    summary = {
        "households": args.households,
        "residents": len(pop.residents),
        "living_alone": sum(1 for r in pop.residents if r.lives_alone),
        "seed": args.seed,
        "start": start.isoformat(),
        "split": split.isoformat(),
        "end": end.isoformat(),
        "messages": messages,
        "readings": store.readings,
        "events": store.events,
        "seconds": round(time.perf_counter() - t_run, 1),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "train": trained,
        "score_ms_p50": sorted(score_ms)[len(score_ms) // 2] if score_ms else None,
        "score_ms_p95": sorted(score_ms)[int(len(score_ms) * 0.95)] if score_ms else None,
        "engine_errors": engine.stats.errors,
        "held_out_incidents": {k: v for k, v in count_by_kind(held).items() if v},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(json.dumps(summary, indent=1))
    print(
        f"carecircle eval --database-url {url} --truth {truth} "
        f"--since {split.isoformat()} --until {end.isoformat()}"
    )
    conn.close()


def rescore(args: argparse.Namespace, split: datetime, end: datetime) -> None:
    """Models again on the same stored month: the rule alerts stay as they were."""
    import shutil

    url = psycopg.conninfo.make_conninfo(args.db, dbname=args.dbname)
    conn = connect(url, autocommit=True)
    conn.execute("DELETE FROM alerts WHERE source = 'model'")
    conn.execute("DELETE FROM ml_models")
    shutil.rmtree(args.out / "registry", ignore_errors=True)
    registry = ModelRegistry(args.out / "registry")
    t0 = time.perf_counter()
    report = train(conn, registry, TrainConfig(), until=split)
    trained = {**report.summary(), "train_seconds": time.perf_counter() - t0}
    print(f"trained at {split.isoformat()}: {json.dumps(trained)[:400]}", flush=True)
    resolve_after = timedelta(minutes=args.resolve_after_min)
    at = (split + timedelta(minutes=5)).astimezone(UTC)
    lat: list[float] = []
    while at < end:
        lat.extend(score_hour(conn, registry, at, TZ).latency_ms)
        for (alert_id,) in conn.execute(
            "SELECT id FROM alerts WHERE source = 'model' AND status NOT IN "
            "('resolved', 'cancelled') AND opened_at <= %s ORDER BY id",
            (at + timedelta(minutes=1) - resolve_after,),
        ).fetchall():
            transition(
                conn,
                int(alert_id),
                Status.RESOLVED,
                actor="replay:caregiver",
                at=at,
                outcome=Outcome.RESIDENT_FINE,
            )
        at += timedelta(hours=1)
    lat.sort()
    print(
        json.dumps({"score_ms_p50": lat[len(lat) // 2], "score_ms_p95": lat[int(len(lat) * 0.95)]})
    )
    conn.close()


if __name__ == "__main__":
    main()
