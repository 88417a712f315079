"""ml on device_sim data: simulated homes → gateway normaliser → ingest writer → rollups
→ features → training from the store → scoring → alerts the evaluation counts.

Two households for four simulated days (seed 31), loaded through the gateway's
adapters and ingest's ``BatchWriter`` (tests/ml/sim_support.py).  Checks what the
models get from real device codes: household sensors belong to nobody (they count
for the residents of their home), the band's step counter counts since midnight.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from carecircle.device_sim.incidents.model import ALERT_KINDS
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.routines.persona import persona_for
from carecircle.ml.evaluation.compare import MATCHES, detects
from carecircle.ml.features.hourly import band_heard, daily_summary
from carecircle.ml.features.store import read_hourly, residents_with_data
from carecircle.ml.registry.store import ModelRegistry
from carecircle.ml.scoring.live import score_hour
from carecircle.ml.training.core import TrainConfig
from carecircle.ml.training.jobs import train
from carecircle.platform.store import connect, migrate
from carecircle.platform.store.timeseries import Retention
from tests.ml.sim_support import load, simulate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
TZ = ZoneInfo("Asia/Shanghai")
SEED = 31
START = datetime(2026, 3, 2, tzinfo=TZ)
DAYS = 4


@pytest.fixture(scope="module")
def sim_db(fresh_database: Callable[[], str]) -> tuple[str, object]:
    url = fresh_database()
    with connect(url, autocommit=True) as conn:
        migrate(conn, now=START, retention=Retention.days(3650, 3650))
    pop = generate_population(PopulationParams(2, 0, 0, SEED))
    report = load(url, pop, simulate(pop, SEED, START, DAYS))
    assert report.gateway_dead == 0 and report.ingest_dead == 0
    assert report.readings > 0
    return url, pop


def test_rollups_carry_every_device_code_the_features_read(sim_db: tuple[str, object]) -> None:
    url, _pop = sim_db
    with psycopg.connect(url) as conn:
        rows = dict(
            conn.execute(
                "SELECT code, count(*) FILTER (WHERE resident_id IS NULL) FROM rollup_1h "
                "GROUP BY code"
            ).fetchall()
        )
        bands = conn.execute(
            "SELECT count(*) FROM rollup_1h WHERE code = 'heart_rate' AND resident_id IS NULL"
        ).fetchone()
    for code in ("motion", "door", "steps", "heart_rate", "spo2", "skin_temperature"):
        assert code in rows, code
    # a home's PIR and door sensors belong to nobody; the band to its wearer
    assert rows["motion"] > 0 and rows["door"] > 0
    assert bands == (0,)


def test_hourly_features_of_simulated_residents_are_sensible(
    sim_db: tuple[str, object],
) -> None:
    url, pop = sim_db
    since, until = START, START + timedelta(days=DAYS)
    with psycopg.connect(url) as conn:
        who = residents_with_data(conn, since, until)
        matrices = read_hourly(conn, since, until, who, TZ)
    residents = pop.residents  # type: ignore[attr-defined]
    assert sorted(who) == sorted(r.id for r in residents)
    for res in residents:
        m = matrices[res.id]
        assert m.hours == 24 * DAYS
        rooms = {
            c: m.column(c).sum()
            for c in ("motion_bedroom", "motion_bathroom", "motion_kitchen", "motion_living")
        }
        assert all(v > 0 for v in rooms.values()), rooms  # the home's sensors count for them
        assert m.column("door_open").sum() > 0
        s = daily_summary(m)
        wake_h = persona_for(SEED, res).wake_mean_min / 60
        # the first activity after 04:00 is the getting up (or a night toilet trip just
        # before it; a partner's toilet trips count for both in a couple)
        first = s.first_activity_hour[s.complete]
        assert np.nanmedian(first) <= wake_h + 1
        if res.lives_alone:
            assert np.nanmedian(first) >= wake_h - 2
        # daily steps from the band's counter: thousands, not the sum of the counter
        steps = s.steps[s.complete]
        if np.isfinite(m.column("hr_mean")).any():
            assert 500 < float(np.median(steps)) < 30_000
            assert np.nanmean(m.column("hr_mean")) == pytest.approx(70, abs=20)
            # the band's worn flag (battery status, every 2 min in range): heard in
            # hours without a heart rate too — off the wrist (charging) at home
            reports = m.column("band_reports")
            off = band_heard(m) & np.isnan(m.column("hr_mean"))
            assert (reports > 0).mean() > 0.8
            assert off.any() and (m.column("off_wrist")[off] > 0).all()


def test_training_from_the_store_then_scoring_on_the_simulated_days(
    sim_db: tuple[str, object], tmp_path: Path
) -> None:
    """Three days of history: every resident gets cold-start models (learning), and the
    last day is scored hour by hour into the alerts table as ``source='model'``."""
    url, pop = sim_db
    registry = ModelRegistry(tmp_path / "registry")
    until = START + timedelta(days=DAYS - 1)
    residents = [r.id for r in pop.residents]  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        report = train(conn, registry, TrainConfig(), until=until)
        assert report.trained == len(residents)
        for name in ("routine", "vitals"):
            records = registry.active(conn, name, residents)
            assert set(records) == set(residents)
            for rec in records.values():
                assert rec.metrics["learning"] is True  # 3 days - 2 held out: cold start
                assert rec.metrics["history_days"] >= 1
        at = until + timedelta(minutes=5)
        scored = 0
        for _ in range(24):
            at += timedelta(hours=1)
            scored += score_hour(conn, registry, at, TZ).scored
        assert scored == 24 * len(residents)
        rows = conn.execute(
            "SELECT kind, detector, explanation FROM alerts WHERE source = 'model'"
        ).fetchall()
    for kind, detector, explanation in rows:
        assert str(detector).startswith(("ml:routine@", "ml:vitals@")), detector
        assert explanation and "feature" in explanation, (kind, explanation)


def test_every_truth_kind_a_model_detects_is_a_simulator_kind() -> None:
    """The matcher's model kinds point at incident kinds the simulator labels."""
    for model_kind, targets in MATCHES.items():
        assert targets <= set(ALERT_KINDS), model_kind
    assert "prolonged_inactivity" in detects("unusual_inactivity")
    assert "missed_wakeup" in detects("missed_routine")
