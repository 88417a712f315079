"""`make bench`: every workload next to its raw baseline, one invocation, medians of repeats.

Prints a table and writes ``bench/results/bench-<time>.json`` (and ``latest.json``).
Options: ``--quick`` (smaller workloads, one repeat; for a smoke run), ``--repeats N``,
``--only NAME`` (repeatable).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench import (
    alert_latency,
    api_bench,
    baselines,
    decode_bench,
    ingest_bench,
    ingest_memory,
    ml_bench,
)
from bench.harness import (
    RESULTS,
    BenchConfig,
    Measurement,
    fresh_database,
    machine_info,
    repeat,
    write_report,
)
from bench.workload import Workload
from carecircle.common.contract import Topics, Uplink
from carecircle.platform.registry import provision

log = logging.getLogger("bench")

Section = Callable[[BenchConfig], dict[str, Any]]


INGEST_GATEWAYS = 50
INGEST_DEVICES = 4  #: per gateway: 200 devices at 1×
INGEST_BATCH = 500  #: readings per gateway message


def _workload(messages: list[tuple[str, bytes]], rows: list[Any], root: str) -> Workload:
    topics = Topics(root)
    return Workload(
        [(topics.uplink(gw, Uplink.BATCH), payload) for gw, payload in messages],
        rows,
        len(rows),
    )


def _pipeline(url: str, cfg: BenchConfig, workers: int, messages: Any, total: int) -> Any:
    def once() -> dict[str, float]:
        r = ingest_bench.end_to_end(
            url, workers, messages, total, mqtt_url=cfg.mqtt_url, batch=INGEST_BATCH, timeout=300
        )
        if r["stored"] != total or r["distinct"] != total:
            raise RuntimeError(f"ingest pipeline stored {r['stored']}/{total} rows")
        return {
            "readings_per_s": float(r["readings_per_s"]),
            "seconds": float(r["seconds"]),
            "worker_cpu_us_per_reading": float(r["worker_cpu_us_per_reading"]),
        }

    return repeat(f"pipeline_{workers}w", cfg.repeats, once)


def ingest_section(cfg: BenchConfig) -> dict[str, Any]:
    """Pipeline (1 and 2 workers) next to raw COPY and raw broker on the same rows/messages."""
    n = 50_000 if cfg.quick else 200_000
    results: dict[str, Measurement] = {}
    with fresh_database(cfg.pg_admin_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            provision(conn, ingest_bench.population(INGEST_GATEWAYS, INGEST_DEVICES))
        messages, rows = ingest_bench.make_messages(
            INGEST_GATEWAYS, INGEST_DEVICES, n, INGEST_BATCH
        )
        workload = _workload(messages, rows, cfg.topic_root)
        results["raw_copy"] = repeat(
            "raw_copy", cfg.repeats, lambda: baselines.raw_copy(url, workload)
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE readings")
        results["raw_broker"] = repeat(
            "raw_broker",
            cfg.repeats,
            lambda: baselines.raw_broker(cfg.mqtt_url, workload, cfg.topic_root),
        )
        for workers in (1, 2):
            results[f"pipeline_{workers}_worker"] = _pipeline(url, cfg, workers, messages, n)
    out: dict[str, Any] = {
        "readings": n,
        "messages": len(messages),
        "readings_per_message": INGEST_BATCH,
        "devices": INGEST_GATEWAYS * INGEST_DEVICES,
    }
    for name, m in results.items():
        out[name] = {"median": m.median, "runs": m.runs}
    copy = results["raw_copy"].median["readings_per_s"]
    broker = results["raw_broker"].median["readings_per_s"]
    ratios: dict[str, float] = {}
    for w in (1, 2):
        rate = results[f"pipeline_{w}_worker"].median["readings_per_s"]
        ratios[f"pipeline_{w}w/raw_copy"] = rate / copy
        ratios[f"pipeline_{w}w/raw_broker"] = rate / broker
    out["ratios"] = ratios
    best = max(results[f"pipeline_{w}_worker"].median["readings_per_s"] for w in (1, 2))
    out["goals"] = {
        "readings_per_s>=50000": best >= 50_000,
        "ratio_to_raw_copy>=0.5": best / copy >= 0.5,
    }
    return out


def scale_section(cfg: BenchConfig) -> dict[str, Any]:
    """The 1-worker pipeline at 1×, 2×, 4× the devices, with the same number of readings."""
    n = 30_000 if cfg.quick else 100_000
    out: dict[str, Any] = {"readings": n, "workers": 1}
    with fresh_database(cfg.pg_admin_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            provision(conn, ingest_bench.population(INGEST_GATEWAYS, INGEST_DEVICES * 4))
        base: float | None = None
        for factor in (1, 2, 4):
            per_gw = INGEST_DEVICES * factor
            messages, _rows = ingest_bench.make_messages(INGEST_GATEWAYS, per_gw, n, INGEST_BATCH)
            m = _pipeline(url, cfg, 1, messages, n)
            rate = m.median["readings_per_s"]
            base = base or rate
            out[f"devices_{INGEST_GATEWAYS * per_gw}"] = {
                "median": {**m.median, "us_per_reading": 1e6 / rate, "relative_rate": rate / base},
                "runs": m.runs,
            }
    return out


def alerts_section(cfg: BenchConfig) -> dict[str, Any]:
    """SOS publish → alert committed → cc_alert received, under 10,000 readings/s of ingest."""
    seconds = 8.0 if cfg.quick else 20.0
    sos_per_run = 10 if cfg.quick else 60
    rate = 10_000.0
    batches = alert_latency.sos_batches(cfg.repeats, sos_per_run)
    with fresh_database(cfg.pg_admin_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            provision(
                conn,
                ingest_bench.population(alert_latency.population_size(cfg.repeats, sos_per_run), 4),
            )
        it = iter(batches)
        m = repeat(
            "sos_latency",
            cfg.repeats,
            lambda: alert_latency.run(url, cfg.mqtt_url, next(it), seconds=seconds, rate=rate),
        )
    p99 = m.median["p99_ms"]
    return {
        "background_target_readings_per_s": rate,
        "seconds_per_run": seconds,
        "ingest_workers": 1,
        "sos_latency": {"median": m.median, "runs": m.runs},
        "goals": {"p99<=1000ms": p99 <= 1000},
    }


def api_section(cfg: BenchConfig) -> dict[str, Any]:
    """Staff alert list and family status next to /healthz, one `platform serve` process."""
    seconds = 3.0 if cfg.quick else 10.0
    connections = 16
    out: dict[str, Any] = {"seconds_per_run": seconds, "connections": connections, "workers": 1}
    with fresh_database(cfg.pg_admin_url) as url:
        api_bench.seed(url)
        with api_bench.serve(url) as base:
            for target in api_bench.targets(base):
                m = repeat(
                    target.name,
                    cfg.repeats,
                    lambda t=target: api_bench.wrk(base, t, seconds, connections),  # type: ignore[misc]
                )
                out[target.name] = {"median": m.median, "runs": m.runs}
    trivial = out["healthz"]["median"]["requests_per_s"]
    out["ratios"] = {
        f"{name}/healthz": out[name]["median"]["requests_per_s"] / trivial
        for name in ("staff_alerts", "family_status")
    }
    out["goals"] = {f"{k}>=0.5": v >= 0.5 for k, v in out["ratios"].items()}
    return out


def models_section(cfg: BenchConfig) -> dict[str, Any]:
    """Training time for N residents × 30 days of hourly rollups; scoring rows/s."""
    residents = 50 if cfg.quick else cfg.ml_residents
    days = 30
    m = repeat("train", 1, lambda: _models_once(residents, days))
    return {
        "residents": residents,
        "days": days,
        "resident_months": residents * days / 30,
        "repeats": 1,
        "train": {"median": m.median, "runs": m.runs},
    }


def _models_once(residents: int, days: int) -> dict[str, float]:
    r = ml_bench.pure(residents, days, 2026)
    train_s = float(r["train_total_s"])  # type: ignore[arg-type]
    score_ms = float(r["score_ms_p50"])  # type: ignore[arg-type]
    return {
        "train_s": train_s,
        "features_s": float(r["features_s"]),  # type: ignore[arg-type]
        "fit_s": float(r["fit_s"]),  # type: ignore[arg-type]
        "rollup_rows": float(r["rollup_rows"]),  # type: ignore[arg-type]
        "train_rollup_rows_per_s": float(r["rollup_rows"]) / max(train_s, 1e-9),  # type: ignore[arg-type]
        "score_ms_p50": score_ms,
        "score_ms_p95": float(r["score_ms_p95"]),  # type: ignore[arg-type]
        "score_resident_hours_per_s": 1000 / score_ms,
    }


def decode_section(cfg: BenchConfig) -> dict[str, Any]:
    """Batch decoding in-process: the ingest fast path next to the pydantic models."""
    n = 20_000 if cfg.quick else 100_000
    m = repeat("decode", cfg.repeats, lambda: decode_bench.run(n, repeats=5))
    return {
        "readings": n,
        "readings_per_message": INGEST_BATCH,
        "decode": {"median": m.median, "runs": m.runs},
    }


def ingest_memory_section(cfg: BenchConfig) -> dict[str, Any]:
    """Opt-in: two workers at a steady paced load (10 minutes, 1 with --quick), RSS sampled."""
    minutes = 1.0 if cfg.quick else cfg.memory_minutes
    out = ingest_memory.run(
        cfg.pg_admin_url,
        cfg.mqtt_url,
        minutes=minutes,
        warmup_minutes=0.25 if cfg.quick else min(2.0, minutes / 5),
        rate=cfg.memory_rate,
    )
    for w, r in enumerate(out["per_worker"], 1):
        out[f"worker_{w}_rss_mb"] = (
            f"first {r['rss_mb_first']}, after warm-up {r['rss_mb_at_warmup']}, "
            f"end {r['rss_mb_end']}, max {r['rss_mb_max']}, "
            f"slope {r['rss_slope_mb_per_min']:+.3f} MB/min "
            f"({r['rss_growth_over_window_pct']:+.2f} % over the window; "
            f"{r['rss_slope_keeping_up_mb_per_min']:+.3f} MB/min over the "
            f"{r['window_samples_keeping_up_pct']} % of it with queue <= 32), "
            f"queue depth max {r['queue_depth_max']}"
        )
        out[f"worker_{w}_heap"] = ", ".join(
            f"{key} {first} -> {last} ({r['heap_slopes_per_min'][key]:+} /min)"
            for key, (first, last) in r["heap_first_last"].items()
        )
    return out


SECTIONS: dict[str, Section] = {
    "ingest": ingest_section,
    "decode": decode_section,
    "alerts": alerts_section,
    "api": api_section,
    "models": models_section,
    "scale": scale_section,
    "ingest_memory": ingest_memory_section,
}
#: Run only when named with --only (too long for every `make bench`).
OPT_IN = {"ingest_memory"}


def render(report: dict[str, Any]) -> str:
    lines = [
        f"CareCircle bench — {report['machine']['cores']} cores, "
        f"{report['machine']['memory_gib']} GiB, commit {report['machine']['commit']}"
    ]
    for section, data in report["sections"].items():
        lines.append(f"\n[{section}]")
        for key, value in data.items():
            if isinstance(value, dict) and "median" in value:
                metrics = ", ".join(f"{k}={v:,.1f}" for k, v in value["median"].items())
                lines.append(f"  {key:<28} {metrics}")
            elif key == "ratios":
                for rk, rv in value.items():
                    lines.append(f"  ratio {rk:<22} {rv:.2f}")
            elif key == "goals":
                for gk, gv in value.items():
                    lines.append(f"  goal {gk:<23} {'met' if gv else 'NOT met'}")
            elif not isinstance(value, dict | list):
                lines.append(f"  {key:<28} {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON reports")
    parser.add_argument(
        "--ml-residents", type=int, default=1000, help="models section: residents × 30 days"
    )
    parser.add_argument(
        "--memory-rate",
        type=float,
        default=20_000,
        help="ingest_memory section: paced readings/s (steady load, not a burst)",
    )
    parser.add_argument(
        "--memory-minutes",
        type=float,
        default=10.0,
        help="ingest_memory section: minutes of paced load (the issue asks for 10)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = BenchConfig(
        quick=args.quick,
        ml_residents=args.ml_residents,
        memory_rate=args.memory_rate,
        memory_minutes=args.memory_minutes,
    )
    cfg.repeats = args.repeats or (1 if args.quick else 3)
    report: dict[str, Any] = {
        "machine": machine_info(cfg.pg_admin_url),
        "repeats": cfg.repeats,
        "quick": cfg.quick,
        "sections": {},
    }
    for name in args.only or [s for s in SECTIONS if s not in OPT_IN]:
        log.info("running %s", name)
        report["sections"][name] = SECTIONS[name](cfg)
    path = write_report(report, args.out)
    sys.stdout.write(render(report) + f"\n\nwritten to {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
