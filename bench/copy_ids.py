"""Raw COPY of the ingest bench's rows with random (v4) and time-ordered (v7) message ids.

The same 200,000 rows into ``readings`` of a scratch database (dropped afterwards), one
connection, chunks of 10,000 rows per transaction, alternated v4, v7, v4, v7.  Prints
rows/s and the PostgreSQL backend's CPU per row (from ``/proc/<pid>/stat``; the server
must run on this machine).  Not part of ``make bench``: it explains one of its numbers.

    .venv/bin/python -m bench.copy_ids [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import fresh_database
from bench.ingest_bench import make_messages
from carecircle.common.contract import new_id

COLS = "time, received_at, msg_id, gateway_id, device_id, resident_id, site_id, code, value"
TYPES = ["timestamptz", "timestamptz", "uuid", "text", "text", "text", "text", "text", "float8"]


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def copy_rows(url: str, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """(rows/s, server CPU µs per row) for one COPY of ``rows`` into an empty table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE readings")
        conn.execute("CHECKPOINT")
        pid = conn.info.backend_pid
        cpu0, t0 = _backend_cpu_s(pid), time.perf_counter()
        for k in range(0, len(rows), 10_000):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY readings ({COLS}) FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.set_types(TYPES)
                for row in rows[k : k + 10_000]:
                    cp.write_row(row)
        wall = time.perf_counter() - t0
        return len(rows) / wall, (_backend_cpu_s(pid) - cpu0) / len(rows) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--readings", type=int, default=200_000)
    args = ap.parse_args()
    with fresh_database(args.pg_url, prefix="cc_copy_ids") as url:
        _, v7 = make_messages(50, 4, args.readings, 500)  # the gateways' ids: v7
        v4 = [(r[0], r[1], uuid.uuid4(), *r[3:]) for r in v7]
        assert all(r[2].version == 7 for r in v7) and new_id().version == 7
        for label, rows in (("v4", v4), ("v7", v7), ("v4", v4), ("v7", v7)):
            rate, cpu = copy_rows(url, rows)
            print(f"{label} ids: {rate:,.0f} rows/s, PostgreSQL {cpu:.1f} µs CPU per row")


if __name__ == "__main__":
    main()
