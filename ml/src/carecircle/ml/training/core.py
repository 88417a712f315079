"""Training without the database: fit, evaluate on a held-out window, decide promotion."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carecircle.common.errors import ConfigError
from carecircle.ml.features.hourly import HOUR, HourlyMatrix
from carecircle.ml.features.rows import ResidentProfile
from carecircle.ml.models.priors import PopulationPriors, fit_priors
from carecircle.ml.models.routine import RoutineModel
from carecircle.ml.models.vitals import VitalsModel


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"timezone {name!r} is not a known time zone (e.g. Asia/Shanghai)"
        ) from err


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20261129
    window_days: int = 28
    holdout_days: int = 2
    #: a candidate is "not worse" when its held-out loss is at most (1 + tolerance) × active's
    tolerance: float = 0.02
    forest_trees: int = 25
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))


def resident_seed(seed: int, resident_id: str) -> int:
    """A per-resident seed that does not depend on the order residents are trained in."""
    digest = hashlib.sha256(f"{seed}:{resident_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def split(m: HourlyMatrix, holdout: timedelta) -> tuple[HourlyMatrix, HourlyMatrix]:
    """The training part and the held-out last ``holdout`` of a resident's hours."""
    k = max(0, m.hours - int(holdout / HOUR))

    def part(a: int, b: int) -> HourlyMatrix:
        return HourlyMatrix(
            m.resident_id,
            m.start + a * HOUR,
            m.values[a:b],
            m.local_hour[a:b],
            m.weekend[a:b],
            m.local_day[a:b],
        )

    return part(0, k), part(k, m.hours)


@dataclass
class ResidentFit:
    resident_id: str
    routine: RoutineModel
    vitals: VitalsModel
    metrics: dict[str, dict[str, Any]]


def fit_resident(
    train: HourlyMatrix,
    holdout: HourlyMatrix,
    profile: ResidentProfile,
    priors: PopulationPriors | None,
    cfg: TrainConfig,
) -> ResidentFit:
    key = profile.profile_key
    routine = RoutineModel.fit(train, key, priors.routine_for(key) if priors else None)
    vitals = VitalsModel.fit(
        train,
        key,
        priors.vitals_for(key) if priors else None,
        seed=resident_seed(cfg.seed, profile.resident_id),
        forest_trees=cfg.forest_trees,
    )
    metrics = {
        "routine": {
            "holdout_nll": _clean(routine.mean_nll(holdout)),
            "history_days": routine.history_days,
            "learning": routine.learning,
            "holdout_hours": holdout.hours,
        },
        "vitals": {
            "holdout_abs_z": _clean(vitals.mean_abs_z(holdout)),
            "history_days": vitals.history_days,
            "learning": vitals.learning,
            "forest": vitals.forest is not None,
            "holdout_hours": holdout.hours,
        },
    }
    return ResidentFit(profile.resident_id, routine, vitals, metrics)


def holdout_loss(model: RoutineModel | VitalsModel, holdout: HourlyMatrix) -> float | None:
    if isinstance(model, RoutineModel):
        return _clean(model.mean_nll(holdout))
    return _clean(model.mean_abs_z(holdout))


def not_worse(candidate: float | None, active: float | None, tolerance: float) -> bool:
    """Promote when there is nothing to compare with, or the candidate's loss is not worse."""
    if active is None:
        return True
    if candidate is None:
        return False
    return candidate <= active + tolerance * abs(active)


def fit_population(
    train: Sequence[HourlyMatrix], profiles: Mapping[str, ResidentProfile]
) -> PopulationPriors:
    return fit_priors(train, {rid: p.profile_key for rid, p in profiles.items()})


def priors_loss(
    priors: PopulationPriors,
    holdouts: Sequence[HourlyMatrix],
    profiles: Mapping[str, ResidentProfile],
) -> float | None:
    """How well the priors alone predict residents' held-out hours (mean NLL)."""
    losses = []
    for h in holdouts:
        key = profiles[h.resident_id].profile_key if h.resident_id in profiles else "all"
        empty = HourlyMatrix(
            h.resident_id, h.start, h.values[:0], h.local_hour[:0], h.weekend[:0], h.local_day[:0]
        )
        model = RoutineModel.fit(empty, key, priors.routine_for(key))
        loss = model.mean_nll(h)
        if not math.isnan(loss):
            losses.append(loss)
    return sum(losses) / len(losses) if losses else None


def _clean(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)
