"""Ingest memory over a long steady run: is a worker's RSS flat?

``python -m bench.run --only ingest_memory`` (opt-in: not part of ``make bench``, never
of ``make test``).  Two real ``carecircle platform ingest`` workers on the shared
subscription, with the alert engine registered as hand-off, take a paced stream of
gateway batches (``rate`` readings/s in messages of 500, fresh message ids every
round) for ``minutes``; every ``sample_s`` seconds each worker's RSS, its queue depth
(``cc_ingest_queue_depth``) and the rows written are sampled.  At the end the publisher
stops, the workers drain, and every published reading must be stored exactly once.

Reported per worker: RSS at the first sample, at the end, its maximum, and the
least-squares slope of RSS (MB/min) over the last ``minutes - warmup`` minutes (after the
pools, caches and the first batches have filled the heap).  "Flat" means that slope
would add less than 2 % of the worker's RSS over the measured window (a falling RSS
is flat too: no growth).  When the machine is too loaded for the workers to keep up, RSS
also follows the queue (up to 2 × receive_maximum messages of ~150 KB) and stops at
that bound; the slope over the samples with the queue (nearly) empty is reported too.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import urllib.request
import uuid
from typing import Any

import psycopg

from bench import ingest_bench
from bench.harness import fresh_database
from carecircle.platform.registry import provision

GATEWAYS = 50
DEVICES = 4  #: per gateway
PER_MESSAGE = 500
CALM_QUEUE = 32  #: queue depth at or below which a worker is keeping up
#: the worker's own heap gauges (ingest/metrics.py HeapCollector), sampled beside its RSS
HEAP_GAUGES = {
    "python_blocks": "cc_process_python_blocks",
    "malloc_in_use_mb": "cc_process_malloc_in_use_bytes",
    "malloc_free_mb": "cc_process_malloc_free_bytes",
}


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0
    return 60 * sum((t - mx) * (v - my) for t, v in points) / sxx


def gauges(port: int, names: list[str]) -> dict[str, float | None]:
    """The named (unlabelled) gauges of one /metrics page; None where absent."""
    out: dict[str, float | None] = dict.fromkeys(names)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return out
    for line in text.decode().splitlines():
        name = line.split(" ", 1)[0].split("{", 1)[0]
        if name in out:
            out[name] = float(line.split()[-1])
    return out


def heap_sample(page: dict[str, float | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, name in HEAP_GAUGES.items():
        v = page.get(name)
        out[key] = None if v is None else (round(v / 2**20, 2) if key.endswith("_mb") else v)
    return out


def heap_points(samples: list[dict[str, Any]], worker: int, key: str) -> list[tuple[float, float]]:
    return [(s["t"], v) for s in samples if (v := s["heap"][worker][key]) is not None]


def run(
    admin_url: str,
    mqtt_url: str,
    *,
    minutes: float = 10.0,
    warmup_minutes: float = 2.0,
    rate: float = 20_000,
    workers: int = 2,
    sample_s: float = 5.0,
) -> dict[str, Any]:
    pool = 100_000  # distinct readings per round; each round rewrites the message ids
    with fresh_database(admin_url, prefix="cc_bench_mem") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            provision(conn, ingest_bench.population(GATEWAYS, DEVICES))
        messages, rows = ingest_bench.make_messages(GATEWAYS, DEVICES, pool, PER_MESSAGE)
        del rows
        rounds = max(1, round(minutes * 60 * rate / pool))
        root = f"benchmem{uuid.uuid4().hex[:8]}"
        procs, ports = ingest_bench.start_workers(url, mqtt_url, root, workers, "ingest-memory")
        ctx = mp.get_context("fork")
        ready, go = ctx.Event(), ctx.Event()
        pub = ctx.Process(
            target=ingest_bench.publisher,
            args=(mqtt_url, root, messages * rounds, ready, go, len(messages), rate / PER_MESSAGE),
        )
        samples: list[dict[str, Any]] = []
        names = ["cc_ingest_queue_depth", *HEAP_GAUGES.values()]
        try:
            pub.start()
            ready.wait(30)
            cpu0 = sum(ingest_bench.cpu_s(p.pid) for p in procs)
            t0 = time.monotonic()
            go.set()
            total = pool * rounds
            written = 0.0
            # publishing takes `minutes`; then the workers drain (at most 5 more minutes)
            while written < total and time.monotonic() - t0 < minutes * 60 + 300:
                written = ingest_bench.scrape(ports)
                pages = [gauges(port, names) for port in ports]
                samples.append(
                    {
                        "t": round(time.monotonic() - t0, 1),
                        "rss_mb": [round(ingest_bench.rss_mb(p.pid), 1) for p in procs],
                        "queue": [page["cc_ingest_queue_depth"] for page in pages],
                        "heap": [heap_sample(page) for page in pages],
                        "written": written,
                    }
                )
                time.sleep(max(0.0, t0 + len(samples) * sample_s - time.monotonic()))
            elapsed = time.monotonic() - t0
            cpu = sum(ingest_bench.cpu_s(p.pid) for p in procs) - cpu0
            pub.join(120)
        finally:
            if pub.is_alive():
                pub.terminate()
                pub.join(10)
            ingest_bench.stop_workers(procs)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT msg_id) FROM readings").fetchone()
        assert row is not None
    window = [s for s in samples if warmup_minutes * 60 <= s["t"] <= minutes * 60]
    per_worker = []
    for w in range(workers):
        series = [(s["t"], s["rss_mb"][w]) for s in samples]
        measured = [(s["t"], s["rss_mb"][w]) for s in window]
        slope = slope_per_min(measured)
        mean = sum(v for _, v in measured) / len(measured) if measured else 0.0
        span = (measured[-1][0] - measured[0][0]) / 60 if len(measured) > 1 else 0.0
        calm = [(s["t"], s["rss_mb"][w]) for s in window if (s["queue"][w] or 0) <= CALM_QUEUE]
        per_worker.append(
            {
                "rss_mb_first": series[0][1] if series else None,
                "rss_mb_at_warmup": measured[0][1] if measured else None,
                "rss_mb_end": series[-1][1] if series else None,
                "rss_mb_max": max(v for _, v in series) if series else None,
                "rss_slope_mb_per_min": round(slope, 3),
                "rss_growth_over_window_pct": round(100 * slope * span / mean, 2) if mean else None,
                # RSS also follows the queue (up to 2 × receive_maximum messages of
                # ~150 KB) when the machine is too loaded for the workers to keep up:
                # the slope over the samples where the queue was (nearly) empty
                "window_samples_keeping_up_pct": round(100 * len(calm) / len(window))
                if window
                else None,
                "rss_slope_keeping_up_mb_per_min": round(slope_per_min(calm), 3),
                # the same slope for the worker's own heap: level while RSS rises =
                # no more memory kept, only more pages held by the allocators
                "heap_slopes_per_min": {
                    key: round(slope_per_min(heap_points(window, w, key)), 3) for key in HEAP_GAUGES
                },
                "heap_first_last": {
                    key: (window[0]["heap"][w][key], window[-1]["heap"][w][key])
                    if window
                    else (None, None)
                    for key in HEAP_GAUGES
                },
                "queue_depth_max": max(
                    (q for s in samples if (q := s["queue"][w]) is not None), default=None
                ),
            }
        )
    # a shrinking RSS (allocator arenas handed back after the warm-up) is not growth
    flat = all(
        w["rss_growth_over_window_pct"] is not None and w["rss_growth_over_window_pct"] < 2
        for w in per_worker
    )
    return {
        "minutes": minutes,
        "warmup_minutes": warmup_minutes,
        "rate_target_readings_per_s": rate,
        "workers": workers,
        "sample_s": sample_s,
        "published": pool * rounds,
        "stored": row[0],
        "distinct": row[1],
        "seconds": round(elapsed, 1),
        "readings_per_s": round(row[0] / elapsed),
        "worker_cpu_us_per_reading": round(1e6 * cpu / row[0], 2) if row[0] else None,
        "per_worker": per_worker,
        "flat": flat,
        "samples": samples,
    }
