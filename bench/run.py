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
from typing import Any

from bench import baselines
from bench.harness import (
    BenchConfig,
    Measurement,
    fresh_database,
    machine_info,
    repeat,
    write_report,
)
from bench.workload import make_workload

log = logging.getLogger("bench")

Section = Callable[[BenchConfig], dict[str, Any]]


def ingest_section(cfg: BenchConfig) -> dict[str, Any]:
    """Raw baselines for ingest: COPY of the rows, and broker publish→subscribe of the batches."""
    n = 50_000 if cfg.quick else 200_000
    workload = make_workload(n, root=cfg.topic_root)
    results: dict[str, Measurement] = {}
    with fresh_database(cfg.pg_admin_url) as url:
        results["raw_copy"] = repeat(
            "raw_copy", cfg.repeats, lambda: baselines.raw_copy(url, workload)
        )
    results["raw_broker"] = repeat(
        "raw_broker",
        cfg.repeats,
        lambda: baselines.raw_broker(cfg.mqtt_url, workload, cfg.topic_root),
    )
    out: dict[str, Any] = {"readings": n, "messages": len(workload.messages)}
    for name, m in results.items():
        out[name] = {"median": m.median, "runs": m.runs}
    return out


SECTIONS: dict[str, Section] = {
    "ingest": ingest_section,
}


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
            elif not isinstance(value, dict | list):
                lines.append(f"  {key:<28} {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = BenchConfig(quick=args.quick)
    cfg.repeats = args.repeats or (1 if args.quick else 3)
    report: dict[str, Any] = {
        "machine": machine_info(cfg.pg_admin_url),
        "repeats": cfg.repeats,
        "quick": cfg.quick,
        "sections": {},
    }
    for name in args.only or list(SECTIONS):
        log.info("running %s", name)
        report["sections"][name] = SECTIONS[name](cfg)
    path = write_report(report)
    sys.stdout.write(render(report) + f"\n\nwritten to {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
