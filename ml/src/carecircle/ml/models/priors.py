"""Population priors by care profile: what a new resident is assumed to be like.

Fitted from every resident of a profile that has at least ``MIN_HISTORY_DAYS`` of
history (all residents of the profile when none has); a profile with no residents
falls back to the pooled ``"all"`` prior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carecircle.ml.features.hourly import COL, HourlyMatrix, daily_summary
from carecircle.ml.models.routine import (
    MIN_HISTORY_DAYS,
    RoutinePrior,
    _wake_hist,
    cell_moments,
)
from carecircle.ml.models.vitals import FLOOR, VITALS, VitalsPrior, _blocks

ALL = "all"


@dataclass
class PopulationPriors:
    routine: dict[str, RoutinePrior] = field(default_factory=dict)
    vitals: dict[str, VitalsPrior] = field(default_factory=dict)

    def routine_for(self, profile_key: str) -> RoutinePrior | None:
        return self.routine.get(profile_key) or self.routine.get(ALL)

    def vitals_for(self, profile_key: str) -> VitalsPrior | None:
        return self.vitals.get(profile_key) or self.vitals.get(ALL)

    def parameters(self) -> dict[str, Any]:
        return {
            "routine": {
                k: (v.rate, v.var, v.quiet, v.wake, v.residents)
                for k, v in sorted(self.routine.items())
            },
            "vitals": {k: (v.median, v.scale, v.residents) for k, v in sorted(self.vitals.items())},
        }


@dataclass
class _Stats:
    rate: np.ndarray
    var: np.ndarray
    quiet: np.ndarray
    wake: np.ndarray
    vit_median: np.ndarray
    vit_scale: np.ndarray
    days: int


def _resident_stats(m: HourlyMatrix) -> _Stats:
    sums, sq, ns, quiet = cell_moments(m)
    all_n = np.maximum(ns.sum(axis=0), 1.0)
    all_rate = sums.sum(axis=0) / all_n
    all_sq = sq.sum(axis=0) / all_n
    rate = np.where(ns > 0, sums / np.maximum(ns, 1.0), all_rate[None])
    second = np.where(ns > 0, sq / np.maximum(ns, 1.0), all_sq[None])
    var = np.maximum(second - rate**2, 0.0)
    all_quiet = quiet.sum(axis=0) / all_n
    quiet_share = np.where(ns > 0, quiet / np.maximum(ns, 1.0), all_quiet[None])
    idx = np.nonzero(m.column("rows") > 0)[0]
    s = daily_summary(m)
    wake = _wake_hist(s.first_activity_hour[s.complete], s.weekend[s.complete])
    totals = wake.sum(axis=1, keepdims=True)
    wake = np.where(totals > 0, wake / np.maximum(totals, 1.0), np.nan)
    v = m.values[:, [COL[c] for c in VITALS]]
    blocks = _blocks(m)
    med = np.full((2, len(VITALS)), np.nan)
    mad = np.full((2, len(VITALS)), np.nan)
    for b in (0, 1):
        vb = v[blocks == b]
        for j in range(len(VITALS)):
            col = vb[:, j][~np.isnan(vb[:, j])]
            if len(col):
                med[b, j] = np.median(col)
                mad[b, j] = max(np.median(np.abs(col - med[b, j])) * 1.4826, FLOOR[j])
    return _Stats(rate, var, quiet_share, wake, med, mad, len(np.unique(m.local_day[idx])))


def fit_priors(
    matrices: Sequence[HourlyMatrix], profile_keys: Mapping[str, str]
) -> PopulationPriors:
    """Priors per care profile (and ``"all"``) from residents' hourly features."""
    stats = {m.resident_id: _resident_stats(m) for m in matrices}
    groups: dict[str, list[str]] = {ALL: list(stats)}
    for rid in stats:
        groups.setdefault(profile_keys.get(rid, ALL), []).append(rid)
    priors = PopulationPriors()
    for key, members in sorted(groups.items()):
        mature = [r for r in members if stats[r].days >= MIN_HISTORY_DAYS] or members
        if not mature:
            continue
        rates = np.array([stats[r].rate for r in mature])
        rate = rates.mean(axis=0)
        # a new person could be any of them: within-person plus between-person variance
        var = np.array([stats[r].var for r in mature]).mean(axis=0) + rates.var(axis=0)
        quiet = np.mean([stats[r].quiet for r in mature], axis=0)
        wakes = np.array([stats[r].wake for r in mature])
        wake = np.nanmean(wakes, axis=0) if not np.isnan(wakes).all() else np.full((2, 25), 1 / 25)
        wake = np.nan_to_num(wake, nan=0.0)
        wake = wake / np.maximum(wake.sum(axis=1, keepdims=True), 1e-9)
        priors.routine[key] = RoutinePrior(
            rate=rate, var=var, quiet=quiet, wake=wake, residents=len(mature)
        )
        meds = np.array([stats[r].vit_median for r in mature])
        if not np.isnan(meds).all():
            scales = np.array([stats[r].vit_scale for r in mature])
            with np.errstate(all="ignore"):
                median = np.nanmedian(meds, axis=0)
                # the prior is wide: personal scatter plus the spread between residents
                between = np.nanmedian(np.abs(meds - median), axis=0) * 1.4826
                within = np.nanmedian(scales, axis=0)
            scale = np.sqrt(np.nan_to_num(within, nan=1.0) ** 2 + np.nan_to_num(between) ** 2)
            priors.vitals[key] = VitalsPrior(
                median=np.nan_to_num(median, nan=0.0),
                scale=np.maximum(scale, FLOOR),
                residents=len(mature),
            )
    return priors
