"""API throughput: real endpoints next to a trivial one, on one ``platform serve`` process.

Seeds a scratch database (the ingest bench's population: 50 households, 200 devices;
a family member linked to one resident; 500 alerts, half of them active), creates a
staff user (township scope) and a family user, starts ``carecircle platform serve`` as a
subprocess on a free loopback port (one uvicorn worker), signs both users in through
``POST /api/v1/auth/token`` and drives each endpoint with ``wrk`` (HTTP/1.1 keep-alive,
``connections`` connections, 2 threads) for ``seconds``:

* ``healthz`` — ``GET /healthz``: the trivial endpoint (no auth, no database);
* ``staff_alerts`` — ``GET /api/v1/alerts`` as staff (first page of 50, newest first);
* ``family_status`` — ``GET /api/v1/residents/{id}/status`` as the linked family member.

Requests/s and latency percentiles come from wrk's own report; non-2xx answers are
counted and make the run fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.ingest_bench import ROOT, free_port, population
from carecircle.common.contract import FamilyLinkSpec, FamilyMemberSpec
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.auth.policy import Role
from carecircle.platform.auth.users import create_user
from carecircle.platform.registry import provision

KINDS = ("sos", "fall", "low_spo2", "cold_room", "device_offline")
FAMILY_RESIDENT = "br0"


def seed(url: str, alerts: int = 500) -> None:
    doc = population(50, 4)
    doc = doc.model_copy(
        update={
            "family_members": [
                FamilyMemberSpec(
                    id="bfam0",
                    display_name="F",
                    links=[FamilyLinkSpec(resident_id=FAMILY_RESIDENT)],
                )
            ]
        }
    )
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        provision(conn, doc)
        for i in range(alerts):
            g = i % 50
            change = repo.open_or_refresh(
                conn,
                repo.AlertDraft(
                    subject=f"br{g}",
                    site_id=f"bhh{g}",
                    kind=KINDS[(i // 50) % len(KINDS)],
                    severity=Severity.HIGH,
                    detector="bench",
                    at=now - timedelta(minutes=alerts - i),
                    resident_id=f"br{g}",
                    device_id=f"bgw{g}-d0",
                ),
            )
            if i % 2 and change is not None:
                repo.transition(
                    conn, change.id, repo.Status.RESOLVED, actor="bench", at=now, note="bench"
                )
        create_user(
            conn,
            user_id="bench-staff",
            username="bench-staff",
            password=PASSWORD,
            role=Role.STAFF,
            place_id="btw",
        )
        create_user(
            conn,
            user_id="bench-family",
            username="bench-family",
            password=PASSWORD,
            role=Role.FAMILY,
            family_member_id="bfam0",
        )


PASSWORD = secrets.token_urlsafe(16)


@contextmanager
def serve(url: str) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "CARECIRCLE_DATABASE_URL": url,
            "CARECIRCLE_HTTP_PORT": str(port),
            "CARECIRCLE_JWT_SECRET": secrets.token_urlsafe(48),
            "CARECIRCLE_LOG_LEVEL": "WARNING",
        }
    )
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "carecircle"), "platform", "serve", "--port", str(port)],
        env=env,
        stdout=(ROOT / "bench" / "results" / "api-serve.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    msg = "platform serve did not start: bench/results/api-serve.log"
                    raise RuntimeError(msg) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def token(base: str, username: str) -> str:
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"{base}/api/v1/auth/token", data=body, timeout=10) as resp:
        return str(json.loads(resp.read())["access_token"])


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    bearer: str | None = None


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(base: str, target: Target, seconds: float, connections: int) -> dict[str, float]:
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("the API bench needs wrk (apt-get install wrk)")
    argv = [exe, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout", "5s"]
    if target.bearer:
        argv += ["-H", f"Authorization: Bearer {target.bearer}"]
    out = subprocess.run(
        [*argv, base + target.path], capture_output=True, text=True, timeout=seconds + 30
    )
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    pcts = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.MULTILINE))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*timeout (\d+)", text)
    if out.returncode != 0 or rps is None or "99" not in pcts:
        raise RuntimeError(f"wrk failed: {out.stderr or text}")
    if bad:
        raise RuntimeError(f"{target.name}: {bad.group(1)} non-2xx answers under load")
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": _ms(pcts["50"]),
        "p99_ms": _ms(pcts["99"]),
        "timeouts": float(errors.group(1)) if errors else 0.0,
    }


def targets(base: str) -> list[Target]:
    """The three loaded endpoints; the authenticated ones must answer 200 first."""
    staff = token(base, "bench-staff")
    family = token(base, "bench-family")
    loaded = [
        Target("staff_alerts", "/api/v1/alerts", staff),
        Target("family_status", f"/api/v1/residents/{FAMILY_RESIDENT}/status", family),
    ]
    for t in loaded:
        req = urllib.request.Request(base + t.path, headers={"Authorization": f"Bearer {t.bearer}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{t.name}: HTTP {resp.status}")
    return [Target("healthz", "/healthz"), *loaded]
