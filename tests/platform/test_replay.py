"""The virtual-time pipeline replay: a simulated day of three homes through the real
gateway runtime, ingest writer, alert engine and scheduler jobs, then scored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from apscheduler.triggers.cron import CronTrigger

from carecircle.common.clock import ManualClock
from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.engine.files import generate_files
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.simtime import DAY_MS, parse_time
from carecircle.platform.alerts.eval.cli import load_alerts, load_truth
from carecircle.platform.alerts.eval.matcher import score
from carecircle.platform.replay import ReplayOptions, VirtualScheduler, replay
from carecircle.platform.settings import PlatformSettings

START = parse_time("2026-01-12T00:00:00+08:00")
SEED = 5033  # one day of three homes with every immediate kind, missed wake-ups, inactivity
IMMEDIATE = ("sos", "fall", "smoke", "gas", "carbon_monoxide", "water_leak")
RATES = {k: 0.35 for k in (*IMMEDIATE, "missed_wakeup", "prolonged_inactivity")}


def test_virtual_scheduler_fires_interval_and_cron_jobs_at_their_times() -> None:
    t0 = datetime(2026, 1, 12, 0, 0, 30, tzinfo=UTC)
    clock = ManualClock(t0)
    sched = VirtualScheduler(clock)
    seen: list[tuple[str, datetime]] = []
    sched.add_job(lambda: seen.append(("i", clock.now())), "interval", seconds=60, id="i")
    sched.add_job(lambda: seen.append(("c", clock.now())), CronTrigger(minute=5), id="c")
    sched.add_job(lambda: seen.append(("n", clock.now())), "interval", seconds=3600,
                  id="n", next_run_time=t0)  # fmt: skip
    flushed: list[datetime] = []
    sched.run_due(t0 + timedelta(minutes=6), flushed.append)
    assert [s for s in seen if s[0] == "n"] == [("n", t0)]
    assert [t for k, t in seen if k == "i"] == [t0 + timedelta(minutes=m) for m in range(1, 7)]
    assert [t for k, t in seen if k == "c"] == [datetime(2026, 1, 12, 0, 5, tzinfo=UTC)]
    assert flushed == sorted(flushed) and len(flushed) == len(seen)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay-day")
    pop = generate_population(PopulationParams(3, 0, 0, SEED))
    (out / "population.json").write_text(pop.model_dump_json(), encoding="utf-8")
    bases = TopicBases(
        "sim/{gw}/zigbee2mqtt", "sim/{gw}/careband", "sim/{gw}/bedsensor", "cc",
        "sim/{gw}/homeassistant",
    )  # fmt: skip
    world = build_world(pop, SimConfig(seed=SEED, bases=bases, rates=dict(RATES)))
    generate_files(Simulation(world, START, START + DAY_MS), out)
    return out


@pytest.mark.timeout(900)  # a simulated day through every stage on a shared machine
def test_a_simulated_day_raises_the_alerts_of_its_incidents(
    day: Path, fresh_database: Callable[[], str]
) -> None:
    url = fresh_database()
    # absence checks every 5 min (not 60 s), routine traffic to ingest every 10 min and no
    # ml/rollups keep the test short; the jobs are still registered through the real
    # entry points (asserted below)
    settings = PlatformSettings(
        database_url=url, alerts_absence_interval_s=300, ingest_batch_max_messages=2000
    )
    options = ReplayOptions(skip_jobs=frozenset({"ml-train", "ml-score", "rollups"}), batch_s=600)
    report = replay(day, settings, options)
    assert report.unrouted == 0
    assert report.items_stored > report.messages  # the band sends several codes a message
    assert {"alerts.absence_checks", "maintain", "rollups", "ml-score"} <= set(report.jobs)
    assert report.jobs["alerts.absence_checks"]["runs"] == 24 * 12
    assert report.jobs["ml-score"]["runs"] == 0
    assert report.handoff_errors == 0

    incidents = load_truth(day / "ground_truth.jsonl")
    real = [i for i in incidents if not i.benign]
    assert {i.kind for i in real} >= {*IMMEDIATE, "missed_wakeup", "prolonged_inactivity"}
    with psycopg.connect(url, autocommit=True) as conn:
        alerts = load_alerts(conn, report.start, report.end)
        # the engine worked in simulated time: alert times are inside the day
        row = conn.execute("SELECT min(opened_at), max(opened_at) FROM alerts").fetchone()
    assert row is not None and report.start <= row[0] and row[1] <= report.end
    result = score(
        incidents, alerts, since=report.start, until=report.end, residents=4,
        grace=timedelta(minutes=30),
    )  # fmt: skip
    by_kind = result.kinds
    for kind in (*IMMEDIATE, "prolonged_inactivity", "missed_wakeup"):
        assert by_kind[kind].missed == 0, (kind, json.dumps(result.as_dict(), default=str))
        assert by_kind[kind].detected >= 1
