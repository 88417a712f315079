"""What ``carecircle demo`` costs on this machine, and how soon it shows a live alert.

    .venv/bin/python -m bench.demo_footprint                       # the default demo
    .venv/bin/python -m bench.demo_footprint --households 12 --gateway-processes 14

Starts ``carecircle demo`` (with the given options) as a new user would, in its own
work directory, then:

* times "ready" and the first alert on a resident on the dashboard (``/board/rows``,
  signed in as the printed staff login) from the start of the command;
* samples every process the demo started (``/proc``: CPU time, RSS, PSS) for
  ``--window`` seconds after that alert, and reports per group (PostgreSQL, Mosquitto,
  ingest, gateways, simulator, API, ...) the CPU share of one core and the memory;
* times ``/board/rows`` while it samples (is the dashboard still responsive?);
* stops the demo with SIGINT and checks that none of its processes is left.

Prints a table and one JSON line (``--json FILE`` writes it too).  The figures
depend on the machine and its other load: they describe one run, nothing more.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = (
    ("postgresql", re.compile(r"^postgres|/postgres\b")),
    ("mosquitto", re.compile(r"mosquitto")),
    ("gateways", re.compile(r"carecircle gateway run")),
    ("ingest", re.compile(r"carecircle platform ingest")),
    ("api", re.compile(r"carecircle platform serve")),
    ("scheduler", re.compile(r"carecircle platform scheduler")),
    ("dispatcher", re.compile(r"carecircle platform dispatcher")),
    ("simulator", re.compile(r"carecircle sim")),
    ("demo", re.compile(r"carecircle demo")),
)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def sample(pid: int) -> dict[str, Any] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0  # type: ignore[union-attr]
    pss = rss
    try:
        m = re.search(r"Pss:\s+(\d+)", Path(f"/proc/{pid}/smaps_rollup").read_text())
        pss = int(m.group(1)) if m else rss
    except OSError:
        pass
    cmd = re.sub(r"^\S*/(python3?|carecircle)\S* ", "carecircle ", cmd)
    cmd = cmd.replace("carecircle -c from carecircle.common.cli import run; run() ", "carecircle ")
    return {
        "cpu_s": (int(stat[11]) + int(stat[12])) / TICK,
        "start": int(stat[19]),
        "rss_kb": rss,
        "pss_kb": pss,
        "cmd": cmd,
    }


def group_of(cmd: str) -> str:
    for name, pattern in GROUPS:
        if pattern.search(cmd):
            return name
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=None)
    ap.add_argument("--gateway-processes", type=int, default=None)
    ap.add_argument("--window", type=float, default=60.0, help="seconds sampled after the alert")
    ap.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for an alert")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    exe = Path(sys.executable).parent / "carecircle"
    workdir = Path(tempfile.mkdtemp(prefix="cc-demo-footprint-"))
    argv = [str(exe), "demo", "--workdir", str(workdir)]
    if args.households is not None:
        argv += ["--households", str(args.households)]
    if args.gateway_processes is not None:
        argv += ["--gateway-processes", str(args.gateway_processes)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("ready:"):
                ready.set()

    threading.Thread(target=reader, daemon=True).start()
    result: dict[str, Any] = {"argv": argv[1:], "cores": os.cpu_count()}
    seen: set[tuple[int, int]] = set()  # (pid, start time) of every process of the demo
    try:
        if not ready.wait(args.deadline):
            raise SystemExit("the demo did not get ready:\n" + "\n".join(lines))
        result["ready_s"] = round(time.monotonic() - t0, 1)
        board = next(line.split()[1] for line in lines if line.startswith("dashboard:"))
        staff = next(line.split() for line in lines if line.strip().startswith("login staff"))
        base = board.rsplit("/", 1)[0]
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.post(
                "/login",
                data={"username": staff[2], "password": staff[staff.index("password") + 1]},
            )
            assert r.status_code == 303, r.text
            while time.monotonic() - t0 < args.deadline:
                rows = client.get("/board/rows").text
                if re.search(r'id="alert-\d+".*?href="/residents/r-\d+"', rows, re.S):
                    break
                time.sleep(1)
            else:
                raise SystemExit("no alert within the deadline")
            result["first_alert_s"] = round(time.monotonic() - t0, 1)
            result["first_alert_after_ready_s"] = round(
                result["first_alert_s"] - result["ready_s"], 1
            )
            result["board_rows_alerts"] = len(re.findall(r'id="alert-\d+"', rows))
            first = {p: s for p in descendants(proc.pid) if (s := sample(p))}
            t_first = time.monotonic()
            latencies: list[float] = []
            peak: dict[int, int] = {}
            load = []
            while time.monotonic() - t_first < args.window:
                t = time.monotonic()
                client.get("/board/rows")
                latencies.append(time.monotonic() - t)
                load.append(os.getloadavg()[0])
                for p in descendants(proc.pid):
                    s = sample(p)
                    if s:
                        peak[p] = max(peak.get(p, 0), s["rss_kb"])
                        if p != proc.pid:
                            seen.add((p, s["start"]))
                time.sleep(2)
            last = {p: s for p in descendants(proc.pid) if (s := sample(p))}
            seen.update((p, s["start"]) for p, s in last.items() if p != proc.pid)
            elapsed = time.monotonic() - t_first
        groups: dict[str, dict[str, float]] = {}
        for p, s in last.items():
            g = groups.setdefault(
                group_of(s["cmd"]), {"processes": 0, "cpu_pct": 0.0, "rss_mb": 0.0, "pss_mb": 0.0}
            )
            g["processes"] += 1
            before = first.get(p, {"cpu_s": 0.0})["cpu_s"]
            g["cpu_pct"] += 100 * (s["cpu_s"] - before) / elapsed
            g["rss_mb"] += s["rss_kb"] / 1024
            g["pss_mb"] += s["pss_kb"] / 1024
        result["window_s"] = round(elapsed, 1)
        result["groups"] = {
            k: {kk: round(vv, 1) for kk, vv in v.items()} for k, v in sorted(groups.items())
        }
        result["total"] = {
            "processes": sum(int(g["processes"]) for g in groups.values()),
            "cpu_pct_of_one_core": round(sum(g["cpu_pct"] for g in groups.values()), 1),
            "rss_mb": round(sum(g["rss_mb"] for g in groups.values())),
            "pss_mb": round(sum(g["pss_mb"] for g in groups.values())),
        }
        result["board_rows_ms"] = {
            "median": round(1000 * statistics.median(latencies)),
            "max": round(1000 * max(latencies)),
        }
        result["load_avg_1m_max"] = round(max(load), 2)
    finally:
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        result["stop_s"] = round(time.monotonic() - t_stop, 1)
        time.sleep(1)
        left = [p for p, start in seen if (s := sample(p)) and s["start"] == start]
        result["left_running"] = left
        result["processes_seen"] = len(seen)
    print(f"{'group':<12}{'procs':>6}{'CPU % (1 core)':>16}{'RSS MB':>9}{'PSS MB':>9}")
    for name, g in result.get("groups", {}).items():
        print(
            f"{name:<12}{int(g['processes']):>6}{g['cpu_pct']:>16.1f}{g['rss_mb']:>9.0f}{g['pss_mb']:>9.0f}"
        )
    tot = result.get("total", {})
    if tot:
        print(
            f"{'total':<12}{tot['processes']:>6}{tot['cpu_pct_of_one_core']:>16.1f}{tot['rss_mb']:>9}{tot['pss_mb']:>9}"
        )
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
