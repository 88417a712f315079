"""Coverage of the 15-minute circle, the time bank, the simulated week against the oracle,
and the dispatch commands as real processes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from carecircle.common.contract.provisioning import ResponderSpec
from carecircle.common.contract.topics import Topics
from carecircle.common.mqtt import BrokerAddress
from carecircle.platform.alerts import repository as repo
from carecircle.platform.alerts.lifecycle import Severity
from carecircle.platform.dispatch import timebank
from carecircle.platform.dispatch.coverage import ResidentPoint, compute_coverage
from carecircle.platform.dispatch.evaluation import (
    AlertRecord,
    dispatch_kpis,
    simulate_week,
)
from carecircle.platform.dispatch.models import Availability, Location, Responder, Shift
from carecircle.platform.dispatch.registry import save_responder
from carecircle.platform.dispatch.travel import GreatCircleEstimator
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention

TZ = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
CLI = [sys.executable, "-c", "from carecircle.common.cli import run; run()"]


def at_m(origin: Location, north_m: float) -> Location:
    return Location(origin.lat + north_m / 111_195.0, origin.lon)


A, B = Location(30.0, 120.0), Location(30.05, 120.0)


def point(rid: str, loc: Location, village: str) -> ResidentPoint:
    return ResidentPoint(rid, f"site-{rid}", loc, village, "tw", frozenset({village, "tw"}))


def test_coverage_now_by_hour_and_uncovered_places() -> None:
    day = Shift.parse({"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"})
    responders = [
        Responder("va", "volunteer", at_m(A, 200), covers=frozenset({"vA"}), shifts=(day,)),
        Responder(
            "vb",
            "volunteer",
            at_m(B, 4000),
            covers=frozenset({"vB"}),
            availability=Availability.ON_DUTY,
        ),
        Responder(
            "night",
            "volunteer",
            at_m(B, 100),
            covers=frozenset({"vB"}),
            shifts=(Shift.parse({"days": [0], "start": "20:00", "end": "06:00"}),),
        ),
    ]
    points = [point("r1", A, "vA"), point("r2", at_m(A, 300), "vA"), point("r3", B, "vB")]
    report = compute_coverage(
        points, responders, GreatCircleEstimator(), TZ, MONDAY_10, by_hour=True
    )
    by_res = {r.resident_id: r for r in report.residents}
    assert by_res["r1"].responder_id == "va" and by_res["r1"].eta_s is not None
    assert by_res["r1"].eta_s < 600
    assert by_res["r3"].responder_id == "vb" and by_res["r3"].eta_s > 900  # 4 km on foot
    assert report.share == pytest.approx(2 / 3)
    places = {(p.level, p.place_id): p for p in report.places}
    assert places[("village", "vA")].share == 1.0
    assert places[("village", "vB")].share == 0.0
    assert places[("township", "tw")].covered == 2
    # by hour: vA is covered only during the day shift; vB only at night (20:00 on)
    hours_a = places[("village", "vA")].share_by_hour
    assert [h for h in range(24) if hours_a[h] == 1.0] == list(range(8, 18))
    hours_b = places[("village", "vB")].share_by_hour
    assert [h for h in range(24) if hours_b[h] == 1.0] == [20, 21, 22, 23]
    assert [s["site_id"] for s in report.uncovered_sites] == ["site-r3"]
    # a responder already on a task does not count
    busy = compute_coverage(
        points, responders, GreatCircleEstimator(), TZ, MONDAY_10, holding=frozenset({"va"})
    )
    assert busy.share == 0.0
    assert json.loads(json.dumps(report.as_dict()))["share_covered"] == pytest.approx(0.6667)


def test_timebank_rule() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert timebank.credit_minutes(t, t) == timebank.MIN_MINUTES
    assert timebank.credit_minutes(t, t + timedelta(seconds=61)) == 2
    assert timebank.credit_minutes(t, t + timedelta(hours=9)) == timebank.CAP_MINUTES


def test_kpis() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    recs = [
        AlertRecord(1, "fall", t, t + timedelta(seconds=30), t + timedelta(seconds=500)),
        AlertRecord(2, "sos", t, t + timedelta(seconds=90), t + timedelta(seconds=1000)),
        AlertRecord(3, "sos", t, escalated=True),
    ]
    k = dispatch_kpis(recs)
    assert (k.alerts, k.accepted, k.arrived, k.within_circle, k.escalated) == (3, 2, 2, 1, 1)
    assert k.share_within_circle == pytest.approx(1 / 3, abs=1e-3)
    assert k.median_time_to_accept_s == 60 and k.p90_time_to_arrive_s == 1000


def test_simulated_week_is_deterministic_and_close_to_the_oracle() -> None:
    ratios = []
    for seed in (1, 2, 3):
        first, again = simulate_week(seed), simulate_week(seed)
        assert first.as_dict(per_alert=True) == again.as_dict(per_alert=True)
        assert first.oracle.share_within_circle > 0.5
        ratios.append(first.ratio)
    assert simulate_week(1).records != simulate_week(2).records
    assert all(r >= 0.9 for r in ratios), ratios


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )


def test_dispatch_eval_command() -> None:
    out = run_cli("dispatch-eval", "--seed", "2", "--json", "--per-alert", "--check", env={})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ratio_share_within_circle"] >= 0.9 and len(data["alerts"]) == 150
    assert {"time_to_accept_s", "time_to_arrive_s"} <= set(data["alerts"][0])


@pytest.fixture(scope="module")
def cli_db(fresh_database: Callable[[], str]) -> str:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=datetime.now(UTC), retention=Retention.days(90, 730))
    return url


def test_dispatcher_process_offers_coverage_and_timebank_commands(
    cli_db: str, mqtt_url: str, topic_root: str
) -> None:
    p = f"c{uuid.uuid4().hex[:6]}"
    with psycopg.connect(cli_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO places (id, parent_id, level, name) VALUES "
            f"('{p}pf', NULL, 'prefecture', 'P'), ('{p}co', '{p}pf', 'county', 'C'), "
            f"('{p}tw', '{p}co', 'township', 'T'), ('{p}vi', '{p}tw', 'village', 'V')"
        )
        conn.execute(
            "INSERT INTO sites (id, kind, place_id, name, lat, lon) "
            f"VALUES ('{p}hh', 'household', '{p}vi', 'H', 30.0, 120.0)"
        )
        conn.execute(
            f"INSERT INTO residents (id, site_id, display_name) VALUES ('{p}r1', '{p}hh', 'R')"
        )
        save_responder(
            conn,
            ResponderSpec(
                id=f"{p}v1",
                display_name="V",
                kind="volunteer",
                lat=30.001,
                lon=120.0,
                availability="on_duty",
                covers=[f"{p}vi"],
            ),
        )
        conn.execute(
            "INSERT INTO time_bank (responder_id, minutes, credited_at, note) "
            f"VALUES ('{p}v1', 35, now(), 'manual')"
        )
    env = {
        "CARECIRCLE_DATABASE_URL": cli_db,
        "CARECIRCLE_MQTT_URL": mqtt_url,
        "CARECIRCLE_TOPIC_ROOT": topic_root,
        "CARECIRCLE_DISPATCH_POLL_S": "0.2",
    }
    cov = run_cli("coverage", "--json", "--by-hour", env=env)
    assert cov.returncode == 0, cov.stderr
    report = json.loads(cov.stdout)
    assert report["share_covered"] == 1.0 and report["uncovered_sites"] == []
    assert len(report["places"][0]["share_by_hour"]) == 24
    text = run_cli("coverage", "--at", "2026-12-01T20:00+08:00", env=env)
    assert text.returncode == 0 and "100.0% covered within 15 min" in text.stdout
    bad = run_cli("coverage", "--at", "yesterday", env=env)
    assert bad.returncode != 0 and "ISO 8601" in bad.stderr
    tb = run_cli("timebank", "--responder", f"{p}v1", env=env)
    assert tb.returncode == 0 and "35 min" in tb.stdout

    got: queue.Queue[dict[str, object]] = queue.Queue(maxsize=10)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    ready = threading.Event()
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.put(json.loads(m.payload))
    address = BrokerAddress.from_url(mqtt_url)
    sub.connect(address.host, address.port)
    sub.subscribe(Topics(topic_root).responder_tasks(f"{p}v1"), qos=1)
    sub.loop_start()
    proc = subprocess.Popen(
        [*CLI, "platform", "dispatcher"],
        # the test servers have no passwords: demo mode (docs/privacy.md)
        env={**os.environ, **env, "CARECIRCLE_DEMO_MODE": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert ready.wait(5)
        with psycopg.connect(cli_db, autocommit=True) as conn:
            # wait until the process listens: its LISTEN shows in pg_stat_activity
            deadline = datetime.now(UTC) + timedelta(seconds=20)
            while datetime.now(UTC) < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'LISTEN%%'"
                ).fetchone()
                if row and row[0]:
                    break
                assert proc.poll() is None, proc.communicate()[1]
                threading.Event().wait(0.1)
            alert = repo.open_or_refresh(
                conn,
                repo.AlertDraft(
                    subject=f"{p}r1",
                    site_id=f"{p}hh",
                    kind="fall",
                    severity=Severity.HIGH,
                    detector="test",
                    at=datetime.now(UTC),
                    resident_id=f"{p}r1",
                ),
            )
        offer = got.get(timeout=15)
        assert offer["type"] == "offer" and offer["alert_id"] == alert.id
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        sub.disconnect()
        sub.loop_stop()
    assert proc.returncode == 0, err
