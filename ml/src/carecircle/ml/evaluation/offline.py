"""Offline evaluation on synthetic data: train on one month, score a new month hour by hour.

The rule baseline here is a plain fixed-threshold detector of the two routine kinds
(no activity for ``RULE_QUIET_HOURS`` in the daytime; not up by ``RULE_WAKE_BY``) and a
fixed heart-rate limit, so the models' value can be measured before the alerts
branch's rules and the simulator's month are merged; after the merge
``carecircle eval`` compares against the real rules on the simulated month.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from carecircle.ml.evaluation.compare import ComparisonTable, compare
from carecircle.ml.evaluation.records import AlertRecord, Period
from carecircle.ml.features.hourly import DAY_START_HOUR, HOUR, HourlyMatrix, hourly_features
from carecircle.ml.models.routine import RoutineModel
from carecircle.ml.models.vitals import VitalsModel
from carecircle.ml.scoring.live import score_matrix
from carecircle.ml.synthetic import Incidents, SynthData, generate, population
from carecircle.ml.training.core import TrainConfig, fit_population, fit_resident, split

RULE_QUIET_HOURS = 4
RULE_DAY = range(8, 22)
RULE_WAKE_BY = 10
RULE_HR_MAX = 100.0
#: a daily notice repeated the next day refreshes the open alert, as open_or_refresh does
DAY_GAP = timedelta(hours=25)


def rule_baseline(m: HourlyMatrix, i: int) -> list[tuple[str, datetime]]:
    """Fixed-threshold rules for hour ``i`` (same door/steps exceptions as the model)."""
    out: list[tuple[str, datetime]] = []
    at = m.time_of(i) + HOUR
    act = m.column("activity")
    hour = int(m.local_hour[i])
    k = 0
    while i - k >= 0 and act[i - k] <= 0 and k < 24:
        k += 1
    if k >= RULE_QUIET_HOURS and hour in RULE_DAY:
        first = i - k + 1
        walking = m.column("steps")[first : i + 1].sum() > 0
        went_out = first > 0 and m.column("door_open")[first - 1] > 0
        if not walking and not went_out:
            out.append(("prolonged_inactivity", at))
    if hour == RULE_WAKE_BY - 1:
        today = np.nonzero(
            (m.local_day == m.local_day[i])
            & (m.local_hour >= DAY_START_HOUR)
            & (np.arange(m.hours) <= i)
        )[0]
        if m.column("out_of_bed")[today].sum() <= 0 and m.column("steps")[today].sum() <= 0:
            out.append(("missed_wakeup", at))
    hr = m.column("hr_mean")[i]
    if not np.isnan(hr) and hr > RULE_HR_MAX:
        out.append(("tachycardia", at))
    return out


def episodes(hits: Iterable[tuple[str, str, datetime, str]]) -> list[AlertRecord]:
    """One alert per run of consecutive hourly hits of a (resident, kind), as open_or_refresh."""
    last: dict[tuple[str, str], datetime] = {}
    out: list[AlertRecord] = []
    for rid, kind, at, source in sorted(hits, key=lambda h: (h[0], h[1], h[2])):
        prev = last.get((rid, kind))
        gap = DAY_GAP if kind == "routine_drift" else HOUR
        if prev is None or at - prev > gap:
            out.append(AlertRecord(kind=kind, resident_id=rid, time=at, source=source))
        last[(rid, kind)] = at
    return out


@dataclass
class OfflineResult:
    table: ComparisonTable
    rule_alerts: list[AlertRecord]
    model_alerts: list[AlertRecord]
    truth_count: int
    details: dict[str, object] = field(default_factory=dict)


def evaluate_synthetic(
    *,
    residents: int,
    train_days: int,
    eval_days: int,
    population_seed: int,
    train_seed: int,
    eval_seed: int,
    start: datetime,
    tz: ZoneInfo,
    incidents: Incidents | None = None,
) -> OfflineResult:
    """Train on ``train_days`` (seed ``train_seed``), evaluate on the next ``eval_days``
    generated with ``eval_seed`` (never used for training)."""
    traits = population(residents, population_seed)
    train = generate(traits, start, train_days, train_seed, tz)
    eval_start = start + timedelta(days=train_days)
    held = generate(
        traits,
        eval_start,
        eval_days,
        eval_seed,
        tz,
        incidents
        or Incidents(
            inactivity_per_month=2.0,
            missed_wakeup_per_month=1.5,
            tachycardia_per_month=0.5,
            drift_share=0.15,
        ),
    )
    return evaluate_data(train, held, start, eval_start, eval_days, tz, train_seed)


def evaluate_data(
    train: SynthData,
    held: SynthData,
    start: datetime,
    eval_start: datetime,
    eval_days: int,
    tz: ZoneInfo,
    seed: int,
) -> OfflineResult:
    end = eval_start + timedelta(days=eval_days)
    cfg = TrainConfig(seed=seed, tz=tz)
    rows_by: dict[str, list] = {}  # type: ignore[type-arg]
    for r in train.rows + held.rows:
        if r.resident_id is not None:
            rows_by.setdefault(r.resident_id, []).append(r)
    rooms = {**train.room_kinds, **held.room_kinds}
    full = {
        rid: hourly_features(rid, rows_by.get(rid, []), rooms, start, end, tz)
        for rid in train.profiles
    }
    train_len = int((eval_start - start) / HOUR)
    parts = {
        rid: split(_head(m, train_len), timedelta(days=cfg.holdout_days)) for rid, m in full.items()
    }
    priors = fit_population([p[0] for p in parts.values()], train.profiles)
    models: dict[str, tuple[RoutineModel, VitalsModel]] = {}
    for rid, (tr, ho) in parts.items():
        fit = fit_resident(tr, ho, train.profiles[rid], priors, cfg)
        models[rid] = (fit.routine, fit.vitals)
    rule_hits: list[tuple[str, str, datetime, str]] = []
    model_hits: list[tuple[str, str, datetime, str]] = []
    for rid, m in full.items():
        routine, vitals = models[rid]
        for i in range(train_len, m.hours):
            for kind, at in rule_baseline(m, i):
                rule_hits.append((rid, kind, at, "rule"))
            for _, f in score_matrix(m, i, routine, vitals):
                model_hits.append((rid, f.kind, f.at, "model"))
    rule_alerts = episodes(rule_hits)
    model_alerts = episodes(model_hits)
    period = Period(eval_start, end, residents=len(full))
    table = compare(rule_alerts, model_alerts, held.truth, period)
    return OfflineResult(table, rule_alerts, model_alerts, len(held.truth))


def _head(m: HourlyMatrix, k: int) -> HourlyMatrix:
    return HourlyMatrix(
        m.resident_id, m.start, m.values[:k], m.local_hour[:k], m.weekend[:k], m.local_day[:k]
    )
