"""ml bench: training time for N residents × D days of hourly rollups, and scoring latency.

    .venv/bin/python bench/ml_bench.py                       # pure path, 1,000 residents × 30 days
    .venv/bin/python bench/ml_bench.py --db postgresql://postgres@127.0.0.1:5432/postgres

With ``--db`` (an admin URL) the bench creates a scratch database, migrates it, loads
the synthetic rollups into ``rollup_1h`` with COPY, runs the real ``train()`` from the
store (registry files + ml_models rows + promotion) and ``score_hour()`` for every
resident, then drops the database.  Results are printed as JSON.

``--band-statuses`` also stores what a band sends beside its readings since session 5
reads it: a battery status with the ``worn`` flag every 2 minutes (off the wrist
20:00–21:00 local, charging) for every resident whose rows hold a heart rate, in
``events`` — 720 rows per band per day, which ``train()`` and ``score_hour()`` now
aggregate (features ``band_reports`` / ``off_wrist``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg import sql

from carecircle.ml.features.hourly import HOUR, hourly_features
from carecircle.ml.registry.store import ModelRegistry
from carecircle.ml.scoring.live import score_hour, score_matrix
from carecircle.ml.synthetic import generate, population
from carecircle.ml.training.core import TrainConfig, fit_population, fit_resident, split
from carecircle.ml.training.jobs import train
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 10, 5, tzinfo=TZ)

ROLLUP_1H = """
CREATE TABLE IF NOT EXISTS rollup_1h (
    bucket timestamptz NOT NULL, resident_id text, site_id text NOT NULL,
    device_id text NOT NULL, code text NOT NULL, n bigint NOT NULL,
    sum double precision, min double precision, max double precision)
"""


def pure(residents: int, days: int, seed: int) -> dict[str, object]:
    traits = population(residents, seed)
    end = START + timedelta(days=days)
    t0 = time.perf_counter()
    matrices = []
    rows_total = 0
    gen_s = 0.0
    for k, t in enumerate(traits):
        g0 = time.perf_counter()
        data = generate([t], START, days, seed * 7919 + k, TZ)
        gen_s += time.perf_counter() - g0
        rows_total += len(data.rows)
        matrices.append(
            hourly_features(t.profile.resident_id, data.rows, data.room_kinds, START, end, TZ)
        )
    features_s = time.perf_counter() - t0 - gen_s
    cfg = TrainConfig(seed=seed, tz=TZ)
    profiles = {t.profile.resident_id: t.profile for t in traits}
    t1 = time.perf_counter()
    parts = [split(m, timedelta(days=cfg.holdout_days)) for m in matrices]
    priors = fit_population([p[0] for p in parts], profiles)
    fits = [fit_resident(tr, ho, profiles[tr.resident_id], priors, cfg) for tr, ho in parts]
    fit_s = time.perf_counter() - t1
    # scoring one new hour per resident: features from 26 h of rows + both models
    lat = []
    for t, fit in zip(traits[:200], fits[:200], strict=True):
        data = generate([t], end, 2, seed + 1, TZ)
        at = end + timedelta(hours=30)
        rows = [r for r in data.rows if at - timedelta(hours=26) <= r.bucket < at]
        s0 = time.perf_counter()
        m = hourly_features(
            t.profile.resident_id, rows, data.room_kinds, at - timedelta(hours=26), at, TZ
        )
        score_matrix(m, m.hours - 1, fit.routine, fit.vitals)
        lat.append((time.perf_counter() - s0) * 1000)
    return {
        "path": "pure (no database)",
        "residents": residents,
        "days": days,
        "rollup_rows": rows_total,
        "generate_s": round(gen_s, 1),
        "features_s": round(features_s, 1),
        "fit_s": round(fit_s, 1),
        "train_total_s": round(features_s + fit_s, 1),
        "score_ms_p50": round(statistics.median(lat), 2),
        "score_ms_p95": round(float(np.percentile(lat, 95)), 2),
    }


def _shared(device_id: str) -> bool:
    """A home's PIR and door sensors belong to nobody (as provisioned by device_sim);
    their rows reach the resident through the site (features.store)."""
    return "-pir-" in device_id or device_id.endswith("-door")


#: A band's battery status with its worn flag every 2 minutes (generated in PostgreSQL).
BAND_STATUSES = """
INSERT INTO events (time, received_at, msg_id, gateway_id, device_id, resident_id, site_id,
                    kind, code, value, attrs)
SELECT t, t, gen_random_uuid(), d.gateway_id, d.id, d.resident_id, d.site_id,
       'status', 'battery', 80,
       jsonb_build_object('worn', extract(hour FROM t AT TIME ZONE %(tz)s) <> 20)
FROM devices d
CROSS JOIN generate_series(%(since)s::timestamptz, %(until)s::timestamptz, '2 minutes') AS t
WHERE d.id IN (SELECT DISTINCT device_id FROM rollup_1h WHERE code = 'heart_rate')
"""


def with_db(
    admin_url: str, residents: int, days: int, seed: int, band_statuses: bool = False
) -> dict[str, object]:
    name = f"cc_mlbench_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{base}/{name}"
    try:
        return _with_db(url, residents, days, seed, band_statuses)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _with_db(
    url: str, residents: int, days: int, seed: int, band_statuses: bool
) -> dict[str, object]:
    traits = population(residents, seed)
    end = START + timedelta(days=days)
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        conn.execute(ROLLUP_1H)
        conn.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES "
            "('pf', NULL, 'prefecture', 'P'), ('co', 'pf', 'county', 'C'), "
            "('tw', 'co', 'township', 'T'), ('vi', 'tw', 'village', 'V')"
        )
        l0 = time.perf_counter()
        rows_total = 0
        for k, t in enumerate(traits):
            data = generate([t], START, days + 1, seed * 7919 + k, TZ)
            p = t.profile
            conn.execute(
                "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
                "VALUES (%s, 'household', 'vi', 'H', 30, 120)",
                (p.site_id,),
            )
            conn.execute(
                "INSERT INTO residents (id, site_id, display_name, care_level, conditions) "
                "VALUES (%s, %s, 'R', %s, %s)",
                (p.resident_id, p.site_id, p.care_level, list(p.conditions)),
            )
            conn.execute(
                "INSERT INTO gateways (id, site_id) VALUES (%s, %s)", (f"gw-{k}", p.site_id)
            )
            for dev, kind in data.room_kinds.items():
                room = f"{p.site_id}-{kind}" if kind else None
                if room:
                    conn.execute(
                        "INSERT INTO rooms (id, site_id, kind, name) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        (room, p.site_id, kind, kind),
                    )
                conn.execute(
                    "INSERT INTO devices (id, gateway_id, site_id, room_id, resident_id, family,"
                    " native_id, type) VALUES (%s, %s, %s, %s, %s, 'zigbee2mqtt', %s, 's')",
                    (dev, f"gw-{k}", p.site_id, room, None if _shared(dev) else p.resident_id, dev),
                )
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY rollup_1h (bucket, resident_id, site_id, device_id, code, n, sum, min, "
                    "max) FROM STDIN"
                ) as copy,
            ):
                for r in data.rows:
                    copy.write_row(
                        (
                            r.bucket,
                            None if _shared(r.device_id) else r.resident_id,
                            r.site_id,
                            r.device_id,
                            r.code,
                            r.n,
                            r.sum,
                            r.min,
                            r.max,
                        )
                    )
            rows_total += len(data.rows)
        conn.execute("CREATE INDEX ON rollup_1h (resident_id, bucket)")
        conn.execute("ANALYZE rollup_1h")
        events = 0
        if band_statuses:
            cur = conn.execute(
                BAND_STATUSES, {"tz": str(TZ), "since": START, "until": end + timedelta(days=1)}
            )
            events = cur.rowcount
            conn.execute("ANALYZE events")
        load_s = time.perf_counter() - l0
        with tempfile.TemporaryDirectory() as tmp:
            registry = ModelRegistry(Path(tmp))
            cfg = TrainConfig(seed=seed, window_days=days, tz=TZ)
            t0 = time.perf_counter()
            report = train(conn, registry, cfg, until=end)
            train_s = time.perf_counter() - t0
            at = end + 11 * HOUR  # scores 10:00–11:00 local
            live = ModelRegistry(Path(tmp))  # a scoring process: empty model cache
            s0 = time.perf_counter()
            scored = score_hour(conn, live, at, TZ)
            cold_s = time.perf_counter() - s0
            s1 = time.perf_counter()
            warm = score_hour(conn, live, at + HOUR, TZ)  # models cached
            warm_s = time.perf_counter() - s1
    return {
        "path": "store (PostgreSQL rollup_1h → registry → ml_models)",
        "residents": residents,
        "days": days,
        "rollup_rows": rows_total,
        "band_status_events": events,
        "load_s": round(load_s, 1),
        "train_s": round(train_s, 1),
        "train_report": report.summary(),
        "score_hour_cold_s": round(cold_s, 2),
        "score_hour_warm_s": round(warm_s, 2),
        "score": warm.summary(),
        "score_cold": scored.summary(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--residents", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--db", help="admin PostgreSQL URL: also run training from the store")
    ap.add_argument("--skip-pure", action="store_true", help="only the store path")
    ap.add_argument(
        "--band-statuses",
        action="store_true",
        help="store path: also a band's worn-flag status every 2 min in events (session 5)",
    )
    args = ap.parse_args()
    if not args.skip_pure:
        print(json.dumps(pure(args.residents, args.days, args.seed), indent=2))
    if args.db:
        out = with_db(args.db, args.residents, args.days, args.seed, args.band_statuses)
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
