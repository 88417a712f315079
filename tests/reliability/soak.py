"""A bounded soak run (``make soak``; ``--minutes`` to change its length).

    python -m tests.reliability.soak --minutes 20 --rate 20

Runs the fault harness's circle for real: native device readings at ``--rate`` messages
per second → ``carecircle gateway run`` → a private Mosquitto → two
``carecircle platform ingest`` workers → PostgreSQL (a fresh database on the machine's
server), plus ``carecircle platform scheduler``.  Every ``--sample-s`` seconds it records
the RSS of every process and the database's connection count, and presses an SOS button
and measures the time until the alert is open (then resolves it through the alert
repository).  At the end: lost / duplicate readings against ground truth.

Fails (exit 1) when, after the warm-up (the first quarter of the samples), RSS of any
process grows by more than 20 %, the connection count grows, the p99 alert latency of the
second half exceeds twice the first half's (plus 0.5 s of slack for tiny numbers), or any
reading is lost or duplicated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql

from carecircle.platform.alerts import repository
from carecircle.platform.alerts.lifecycle import Status
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention
from tests.reliability.harness import Native, Proc, circle, recent, tally, wait

ADMIN_URL = os.environ.get(
    "CARECIRCLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("CARECIRCLE_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    """Open file descriptors (sockets, files) of a process: connections that leak show here."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0


def p99(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(0.99 * (len(s) - 1)))] if s else 0.0


def sos_latency(url: str, dev: Native, resident: str, timeout: float = 30) -> float:
    t0 = time.monotonic()
    dev.sos(at=datetime.now(UTC).replace(microsecond=0))
    dev.flush()
    found: list[int] = []

    def opened() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT id FROM alerts WHERE resident_id = %s AND kind = 'sos'"
                " AND status = 'open' ORDER BY id DESC LIMIT 1",
                (resident,),
            ).fetchone()
        if row:
            found.append(int(row[0]))
        return bool(row)

    wait(opened, timeout, "the SOS alert")
    latency = time.monotonic() - t0
    with psycopg.connect(url, autocommit=True) as conn:  # resolved, so the next SOS opens anew
        repository.transition(
            conn, found[-1], Status.RESOLVED, actor="soak", at=datetime.now(UTC), note="soak"
        )
    return latency


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=20.0, help="native messages per second")
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--csv", type=Path, help="also write the samples here")
    args = ap.parse_args(argv)

    name = f"cc_soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        with connect(url, autocommit=True) as conn:
            migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
        tmp = Path(tempfile.mkdtemp(prefix="cc-soak-"))
        print(f"logs in {tmp} (removed when the soak passes)", flush=True)
        root = f"soak{uuid.uuid4().hex[:8]}"
        with circle(tmp, MQTT_URL, root, url, f"k{uuid.uuid4().hex[:6]}") as c:
            c.provision()
            for i in range(2):
                c.worker(f"w{i}").start()
            c.wait_workers_running()
            sched = Proc(
                ["platform", "scheduler", "--database-url", url],
                tmp / "scheduler.log",
                env={"CARECIRCLE_DEMO_MODE": "true"},
            )
            c.others.append(sched)  # stopped with the circle, also on Ctrl-C
            sched.start()
            gw = c.gateway()
            gw.start()
            c.wait_gateway_ready()
            # device times from the wall clock: base + 1 s per message would run ahead of
            # real time at 20 msg/s and be refused as implausible (found by the first
            # 20-minute run: after ~3 min every reading was a dead letter)
            dev = Native(c.mqtt_url, c.topic_root, c.gw, recent(60), realtime=True)
            procs = {"gateway": gw, "ingest-w0": c.workers[0], "ingest-w1": c.workers[1]}
            procs["scheduler"] = sched
            samples: list[dict[str, float]] = []
            end = time.monotonic() + args.minutes * 60
            next_sample = time.monotonic() + args.sample_s
            interval = 1.0 / args.rate
            fd_cols = [f"{p}_fds" for p in procs] + ["broker_fds"]
            header = ["t_s", *procs, *fd_cols, "pg_conns", "sos_latency_s"]
            print(" ".join(f"{h:>12}" for h in header), flush=True)
            started = time.monotonic()
            while time.monotonic() < end:
                dev.reading()
                if len(dev.produced) % 200 == 0:
                    dev.flush()
                if time.monotonic() >= next_sample:
                    next_sample += args.sample_s
                    row: dict[str, float] = {"t_s": time.monotonic() - started}
                    for pname, p in procs.items():
                        if not p.alive():
                            print(f"process {pname} died; see {p.log}", file=sys.stderr)
                            return 1
                        row[pname] = rss_kib(p.pid) / 1024
                        row[f"{pname}_fds"] = open_fds(p.pid)
                    assert c.broker.proc is not None
                    row["broker_fds"] = open_fds(c.broker.proc.pid)
                    with psycopg.connect(url, autocommit=True) as conn:
                        n = conn.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                        ).fetchone()
                    row["pg_conns"] = float(n[0]) - 1 if n else 0.0  # minus this one
                    row["sos_latency_s"] = sos_latency(url, dev, f"{c.prefix}r")
                    samples.append(row)
                    print(" ".join(f"{row[h]:>12.2f}" for h in header), flush=True)
                time.sleep(interval)
            dev.close()
            c.wait_stored(len(dev.produced), 120)
            t = tally(url, dev.produced, c.gw)
            print(t.line("soak"))
            sched.terminate()
        if args.csv is not None:
            args.csv.write_text(
                ",".join(header)
                + "\n"
                + "".join(",".join(f"{r[h]:.3f}" for h in header) + "\n" for r in samples)
            )
        code = verdict(samples, list(procs), t.lost, t.duplicates, t.dead_letters)
        if code == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        return code
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def verdict(
    samples: list[dict[str, float]], procs: list[str], lost: int, dups: int, dead: int = 0
) -> int:
    problems = []
    if len(samples) < 4:
        problems.append(f"only {len(samples)} samples: run longer than 4 sample intervals")
    else:
        warm = samples[len(samples) // 4 :]
        for p in procs:
            base, last = warm[0][p], max(s[p] for s in warm[len(warm) // 2 :])
            if last > base * 1.2:
                problems.append(f"{p} RSS grew {base:.1f} → {last:.1f} MiB (> 20 %)")
        if warm[-1]["pg_conns"] > max(s["pg_conns"] for s in warm[: len(warm) // 2]):
            problems.append("PostgreSQL connections grew")
        for col in [f"{p}_fds" for p in procs] + ["broker_fds"]:
            base, last = warm[0][col], max(s[col] for s in warm[len(warm) // 2 :])
            if last > base * 1.2 + 5:
                problems.append(f"{col} grew {base:.0f} → {last:.0f} (open descriptors)")
        half = len(samples) // 2
        first = p99([s["sos_latency_s"] for s in samples[:half]])
        second = p99([s["sos_latency_s"] for s in samples[half:]])
        print(f"alert latency p99: first half {first:.2f} s, second half {second:.2f} s")
        if second > 2 * first + 0.5:
            problems.append(f"alert latency p99 drifted {first:.2f} → {second:.2f} s")
    if lost or dups:
        problems.append(f"lost={lost} duplicates={dups}")
    if dead:
        problems.append(f"dead_letters={dead}: every soak reading is valid, none may be refused")
    for p in problems:
        print("SOAK FAIL:", p)
    print("SOAK", "FAILED" if problems else "PASSED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
