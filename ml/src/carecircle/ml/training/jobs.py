"""Training from the store: read rollups, fit, register candidates, promote the not-worse.

``train()`` is what the nightly scheduler job and ``carecircle ml train`` run.  It is
incremental: with ``incremental=True`` a resident whose active model already covers
the window is skipped.  For every resident it fits a routine and a vitals model on
the window minus the held-out last ``holdout_days``, scores candidate and active
model on that held-out window, and promotes the candidate only when it is not worse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from carecircle.common.errors import NotFound, StoreError
from carecircle.ml.features.hourly import (
    FEATURES,
    HOUR,
    HourlyMatrix,
    floor_hour,
)
from carecircle.ml.features.rows import ResidentProfile
from carecircle.ml.features.store import (
    chunks,
    load_profiles,
    read_hourly,
    residents_with_data,
)
from carecircle.ml.models.priors import PopulationPriors
from carecircle.ml.registry.store import ModelRecord, ModelRegistry
from carecircle.ml.training.core import (
    TrainConfig,
    fit_population,
    fit_resident,
    holdout_loss,
    not_worse,
    priors_loss,
    split,
)

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]
POPULATION = "population"
#: Residents below this many in a run do not make new population priors.
MIN_POPULATION = 5


@dataclass
class TrainReport:
    window: tuple[datetime, datetime]
    trained: int = 0
    promoted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    priors: str = "unchanged"
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "trained": self.trained,
            "promoted": len(self.promoted),
            "rejected": len(self.rejected),
            "skipped": len(self.skipped),
            "priors": self.priors,
            "seconds": round(self.seconds, 2),
        }


def _decide(
    conn: Conn,
    registry: ModelRegistry,
    candidate: ModelRecord,
    active: ModelRecord | None,
    candidate_loss: float | None,
    active_loss: float | None,
    cfg: TrainConfig,
    at: datetime,
    actor: str,
) -> bool:
    if not_worse(candidate_loss, active_loss, cfg.tolerance):
        registry.promote(conn, candidate.id, at=at, actor=actor)
        return True
    registry.reject(
        conn,
        candidate.id,
        {
            "holdout_loss": candidate_loss,
            "active_loss": active_loss,
            "active_version": active.version if active else None,
        },
    )
    return False


def _covered_until(record: ModelRecord) -> datetime:
    """The end of the data window the model's training run looked at."""
    value = record.metrics.get("window_until")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return record.data_until


def _load_or_none(registry: ModelRegistry, record: ModelRecord | None) -> Any:
    """The active model, or None when its file is missing or fails its checksum, or it
    was trained on other features than today's (``FEATURES``; it does not compete
    with a candidate: the candidate replaces it)."""
    if record is None:
        return None
    if list(record.features) != list(FEATURES):
        log.info(
            "active %s of %s was trained on other features; replacing it",
            record.model,
            record.owner,
        )
        return None
    try:
        return registry.load(record)
    except (NotFound, StoreError) as err:
        log.warning(
            "active %s of %s cannot be loaded (%s); replacing it", record.model, record.owner, err
        )
        return None


def promote_if_not_worse(
    conn: Conn,
    registry: ModelRegistry,
    candidate: ModelRecord,
    holdout: HourlyMatrix,
    cfg: TrainConfig,
    *,
    at: datetime,
    actor: str,
) -> bool:
    """Score candidate and active version on the same held-out hours; promote or reject."""
    owner = candidate.owner
    active = registry.active(conn, candidate.model, [owner]).get(owner)
    current = _load_or_none(registry, active)
    active_loss = holdout_loss(current, holdout) if current is not None else None
    loss = holdout_loss(registry.load(candidate), holdout)
    return _decide(conn, registry, candidate, active, loss, active_loss, cfg, at, actor)


def train(
    conn: Conn,
    registry: ModelRegistry,
    cfg: TrainConfig,
    *,
    until: datetime,
    since: datetime | None = None,
    residents: Sequence[str] | None = None,
    incremental: bool = False,
    actor: str = "system:ml",
) -> TrainReport:
    """Fit and register candidates for ``residents`` (default: all with data in the
    window); ``incremental``: skip those whose active routine model, trained on
    today's ``FEATURES``, already covers the window."""
    started = time.perf_counter()
    until = floor_hour(until)
    since = floor_hour(since) if since else until - timedelta(days=cfg.window_days)
    report = TrainReport(window=(since, until))
    holdout = timedelta(days=cfg.holdout_days)
    who = list(residents) if residents is not None else residents_with_data(conn, since, until)
    if incremental:
        current = registry.active(conn, "routine", who, features=FEATURES)
        fresh = [r for r in who if r not in current or _covered_until(current[r]) < until]
        for r in set(who) - set(fresh):
            report.skipped[r] = "active model already covers the window"
        who = fresh
    profiles = load_profiles(conn, who)
    for r in [r for r in who if r not in profiles]:
        report.skipped[r] = "not a resident"
    who = [r for r in who if r in profiles]
    matrices: dict[str, HourlyMatrix] = {}
    for part in chunks(who, 200):
        matrices.update(read_hourly(conn, since, until, part, cfg.tz))
    parts = {rid: split(m, holdout) for rid, m in matrices.items()}
    priors = _population(conn, registry, cfg, parts, profiles, report, since, until, actor)
    for rid in who:
        train_m, hold_m = parts[rid]
        if train_m.hours == 0 or (train_m.column("rows") > 0).sum() == 0:
            report.skipped[rid] = "no rollups in the training window"
            continue
        fit = fit_resident(train_m, hold_m, profiles[rid], priors, cfg)
        report.trained += 1
        for name, obj in (("routine", fit.routine), ("vitals", fit.vitals)):
            metrics = {**fit.metrics[name], "window_until": until.isoformat()}
            active = registry.active(conn, name, [rid]).get(rid)
            active_loss = None
            current = _load_or_none(registry, active)
            if active is not None and current is not None:
                metrics["active_version"] = active.version
                active_loss = holdout_loss(current, hold_m)
                metrics["active_holdout_loss"] = active_loss
            record = registry.save(
                conn,
                owner=rid,
                resident_id=rid,
                model=name,
                obj=obj,
                params=obj.parameters(),
                data_since=since,
                data_until=train_m.start + train_m.hours * HOUR,
                features=list(FEATURES),
                metrics=metrics,
                seed=cfg.seed,
            )
            loss = holdout_loss(obj, hold_m)
            if _decide(conn, registry, record, active, loss, active_loss, cfg, until, actor):
                report.promoted.append(f"{rid}/{name}@{record.version}")
            else:
                report.rejected.append(f"{rid}/{name}@{record.version}")
    report.seconds = time.perf_counter() - started
    log.info("ml training %s", report.summary())
    return report


def _population(
    conn: Conn,
    registry: ModelRegistry,
    cfg: TrainConfig,
    parts: dict[str, tuple[HourlyMatrix, HourlyMatrix]],
    profiles: dict[str, ResidentProfile],
    report: TrainReport,
    since: datetime,
    until: datetime,
    actor: str,
) -> PopulationPriors | None:
    active = registry.active(conn, "priors", [POPULATION]).get(POPULATION)
    active_priors: PopulationPriors | None = _load_or_none(registry, active)
    if len(parts) < MIN_POPULATION:
        return active_priors
    train_ms = [p[0] for p in parts.values() if p[0].hours]
    holdouts = [p[1] for p in parts.values() if p[1].hours]
    candidate = fit_population(train_ms, profiles)
    loss = priors_loss(candidate, holdouts, profiles)
    active_loss = priors_loss(active_priors, holdouts, profiles) if active_priors else None
    record = registry.save(
        conn,
        owner=POPULATION,
        resident_id=None,
        model="priors",
        obj=candidate,
        params=candidate.parameters(),
        data_since=since,
        data_until=until,
        features=list(FEATURES),
        metrics={
            "holdout_nll": loss,
            "active_holdout_loss": active_loss,
            "residents": len(train_ms),
            "profiles": sorted(candidate.routine),
            "window_until": until.isoformat(),
        },
        seed=cfg.seed,
    )
    if _decide(conn, registry, record, active, loss, active_loss, cfg, until, actor):
        report.priors = f"promoted v{record.version}"
        return candidate
    report.priors = f"rejected v{record.version}"
    return active_priors
