"""Shared machinery for benchmarks: machine facts, repeated runs, medians, reports.

Every figure is measured in the run that reports it; nothing here is a constant.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class BenchConfig:
    pg_admin_url: str = os.environ.get(
        "CARECIRCLE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    mqtt_url: str = os.environ.get("CARECIRCLE_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
    repeats: int = 3
    quick: bool = False
    ml_residents: int = 1000  #: models section: residents × 30 days (``--ml-residents``)
    memory_rate: float = 20_000  #: ingest_memory section: paced readings/s
    memory_minutes: float = 10.0  #: ingest_memory section: minutes of paced load
    topic_root: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")


def _cmd(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine_info(pg_admin_url: str) -> dict[str, Any]:
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        with psycopg.connect(pg_admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg_version = str(row[0]) if row else "unknown"
    except psycopg.Error:
        pg_version = "unreachable"
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "mosquitto": _cmd("/usr/sbin/mosquitto", "-h"),
        "packages": _packages(),
        "commit": _cmd("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "dirty": bool(_cmd("git", "-C", str(ROOT), "status", "--porcelain") not in ("", "unknown")),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _packages() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in (
        "pydantic",
        "msgspec",
        "paho-mqtt",
        "psycopg",
        "fastapi",
        "uvicorn",
        "scikit-learn",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@contextmanager
def fresh_database(admin_url: str, prefix: str = "cc_bench") -> Iterator[str]:
    """A new, migrated database for one benchmark; dropped afterwards."""
    from carecircle.platform.store import connect, migrate
    from carecircle.platform.store.timeseries import Retention

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass
class Measurement:
    """One workload's repeated results: each run's metrics, and their medians."""

    name: str
    runs: list[dict[str, float]] = field(default_factory=list)

    @property
    def median(self) -> dict[str, float]:
        keys = self.runs[0].keys() if self.runs else []
        return {k: statistics.median(r[k] for r in self.runs) for k in keys}


def repeat(name: str, times: int, run: Callable[[], dict[str, float]]) -> Measurement:
    m = Measurement(name)
    for _ in range(times):
        m.runs.append(run())
    return m


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation; values need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def write_report(report: dict[str, Any], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2, default=str))
    return path
