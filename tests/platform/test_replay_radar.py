"""A bathroom fall that only a radar fall sensor sees: simulator → real gateway runtime →
ingest writer → alert engine (the virtual-time replay), and a ``fall`` alert opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from carecircle.device_sim.devices.formats import TopicBases
from carecircle.device_sim.engine.files import generate_files
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.simtime import DAY_MS, HOUR_S, parse_time
from carecircle.platform.alerts.eval.cli import load_alerts
from carecircle.platform.replay import ReplayOptions, replay
from carecircle.platform.settings import PlatformSettings

START = parse_time("2026-01-12T00:00:00+08:00")
SEED = 4471


@pytest.mark.timeout(900)
def test_a_bathroom_fall_seen_only_by_the_radar_raises_a_fall_alert(
    tmp_path: Path, fresh_database: Callable[[], str]
) -> None:
    pop = generate_population(PopulationParams(1, 0, 0, SEED, radar_bathroom_share=1.0))
    # no band and no SOS button: the radar is the only device that can tell of the fall
    pop = pop.model_copy(
        update={
            "devices": [d for d in pop.devices if d.binding.type not in ("wearable", "sos_button")]
        }
    )
    assert any(d.binding.type == "radar_fall_sensor" for d in pop.devices)
    (tmp_path / "population.json").write_text(pop.model_dump_json(), encoding="utf-8")
    bases = TopicBases(
        "sim/{gw}/zigbee2mqtt", "sim/{gw}/careband", "sim/{gw}/bedsensor", "cc",
        "sim/{gw}/homeassistant",
    )  # fmt: skip
    config = SimConfig(seed=SEED, bases=bases, incident_scale=0, radar_fall_detection=1.0)
    sim = Simulation(build_world(pop, config), START, START + DAY_MS)
    rid = pop.residents[0].id
    s = sim.site_for(rid, None, None)
    plans, _ = s.plans(s.ctx(0))
    bath = next(x for x in plans[rid] if x.room == "bath" and x.start > 7 * HOUR_S)
    inc = sim.inject("fall", at_ms=START + (bath.start + 5) * 1000, resident=rid, duration_s=2400)
    assert inc.detail["room_code"] == "bath" and inc.detail["detected_by_radar"] is True
    generate_files(sim, tmp_path)

    url = fresh_database()
    settings = PlatformSettings(database_url=url, alerts_absence_interval_s=300)
    options = ReplayOptions(skip_jobs=frozenset({"ml-train", "ml-score", "rollups"}), batch_s=600)
    report = replay(tmp_path, settings, options)
    assert report.unrouted == 0
    with psycopg.connect(url, autocommit=True) as conn:
        alerts = load_alerts(conn, report.start, report.end)
        events = conn.execute(
            "SELECT count(*) FROM events WHERE code = 'fall' AND device_id = %s",
            (f"{inc.site_id}-radar-bath",),
        ).fetchone()
    assert events is not None and events[0] >= 1
    falls = [a for a in alerts if a.kind == "fall"]
    assert falls, [a.kind for a in alerts]
    assert any(inc.start_ms <= a.opened_at.timestamp() * 1000 <= inc.end_ms for a in falls)
