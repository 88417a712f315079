"""The vitals model of one resident: robust baselines by time of day, plus an IsolationForest.

For each vital feature and time-of-day block (night 22–06, day 06–22) the baseline is
the resident's median and MAD (scaled to a standard deviation, floored so a very
steady person does not alarm on noise), shrunk towards the population prior of the
care profile while history is short.  An hour is anomalous when one feature is
``z_alone`` robust z-scores from normal, or when the IsolationForest (trained on the
resident's own z-vectors) calls the hour an outlier and one feature is ``z_with_forest``
away.  The explanation names the most deviating feature, observed vs expected, and z.
A raised heart rate while walking (steps in the hour) is not an anomaly, and the
heart-rate range of an hour is judged only in hours without any movement (out-of-bed
activity or steps): getting up for the toilet at night widens it, as it should.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from carecircle.ml.features.hourly import COL, HOUR, NIGHT_HOURS, FloatArray, HourlyMatrix
from carecircle.ml.models.findings import Finding

VITALS = ("hr_mean", "hr_range", "spo2_mean", "spo2_min", "skin_temp_mean")
#: Smallest standard deviation per feature (device resolution and normal noise).
FLOOR = np.array([3.0, 3.0, 0.8, 1.0, 0.3])
MIN_HISTORY_DAYS = 14
W0 = 7.0 * 24  # prior weight in pseudo-hours (7 days)
STEPS_EXERCISE = 300.0


@dataclass(frozen=True)
class VitalsPrior:
    median: FloatArray  # (2, F)
    scale: FloatArray  # (2, F)
    residents: int


def _blocks(m: HourlyMatrix) -> np.ndarray:
    return np.array([0 if int(h) in NIGHT_HOURS else 1 for h in m.local_hour], dtype=np.int64)


@dataclass
class VitalsModel:
    resident_id: str
    profile_key: str
    history_days: int
    median: FloatArray  # (2, F)
    scale: FloatArray  # (2, F)
    n_hours: FloatArray  # (2, F) hours of own data behind each baseline
    forest: IsolationForest | None
    forest_threshold: float
    trained_until: datetime
    seed: int
    z_alone: float = 5.0
    z_with_forest: float = 3.5

    @classmethod
    def fit(
        cls,
        m: HourlyMatrix,
        profile_key: str,
        prior: VitalsPrior | None,
        seed: int,
        forest_trees: int = 25,
    ) -> VitalsModel:
        x = m.values[:, [COL[v] for v in VITALS]]
        blocks = _blocks(m)
        f = len(VITALS)
        median = np.full((2, f), np.nan)
        scale = np.full((2, f), np.nan)
        n_hours = np.zeros((2, f))
        for b in (0, 1):
            xb = x[blocks == b]
            for j in range(f):
                col = xb[:, j]
                col = col[~np.isnan(col)]
                n_hours[b, j] = len(col)
                if len(col):
                    med = float(np.median(col))
                    mad = float(np.median(np.abs(col - med))) * 1.4826
                    median[b, j], scale[b, j] = med, max(mad, float(FLOOR[j]))
        if prior is not None:
            w = n_hours / (n_hours + W0)
            median = np.where(
                np.isnan(median), prior.median, w * np.nan_to_num(median) + (1 - w) * prior.median
            )
            scale = np.where(
                np.isnan(scale), prior.scale, w * np.nan_to_num(scale) + (1 - w) * prior.scale
            )
        days = len(np.unique(m.local_day[~np.isnan(x).all(axis=1)]))
        model = cls(
            resident_id=m.resident_id,
            profile_key=profile_key,
            history_days=days,
            median=median,
            scale=np.maximum(np.nan_to_num(scale, nan=1.0), FLOOR),
            n_hours=n_hours,
            forest=None,
            forest_threshold=float("-inf"),
            trained_until=m.start + m.hours * HOUR,
            seed=seed,
        )
        z = model.zscores(m)
        rows = ~np.isnan(z).all(axis=1)
        if days >= MIN_HISTORY_DAYS and rows.sum() >= 200:
            data = np.nan_to_num(z[rows])
            forest = IsolationForest(n_estimators=forest_trees, random_state=seed)
            forest.fit(data)
            scores = forest.score_samples(data)
            model.forest = forest
            model.forest_threshold = float(np.quantile(scores, 0.005))
        return model

    @property
    def learning(self) -> bool:
        return self.history_days < MIN_HISTORY_DAYS

    def zscores(self, m: HourlyMatrix) -> FloatArray:
        x = m.values[:, [COL[v] for v in VITALS]]
        b = _blocks(m)
        z: FloatArray = (x - self.median[b]) / self.scale[b]
        return z

    def zrow(self, m: HourlyMatrix, i: int) -> FloatArray:
        x = m.values[i, [COL[v] for v in VITALS]]
        b = 0 if int(m.local_hour[i]) in NIGHT_HOURS else 1
        z: FloatArray = (x - self.median[b]) / self.scale[b]
        return z

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "resident_id": self.resident_id,
            "profile_key": self.profile_key,
            "history_days": self.history_days,
            "median": self.median,
            "scale": self.scale,
            "n_hours": self.n_hours,
            "forest_threshold": self.forest_threshold,
            "seed": self.seed,
        }
        if self.forest is not None:
            params["forest"] = [
                (t.tree_.feature, t.tree_.threshold) for t in self.forest.estimators_
            ]
        return params

    def mean_abs_z(self, m: HourlyMatrix) -> float:
        """Calibration on a held-out window: mean |z| (clipped at 10) over measured values."""
        z = np.abs(self.zscores(m))
        z = z[~np.isnan(z)]
        return float(np.minimum(z, 10.0).mean()) if len(z) else float("nan")

    def score(self, m: HourlyMatrix, i: int) -> list[Finding]:
        """The finding of hour ``i``, with the start of its episode: the first hour of
        the uninterrupted run of anomalous hours it belongs to (within ``m``)."""
        found = self._hour(m, i)
        if not found:
            return []
        j = i
        while j > 0 and self._hour(m, j - 1):
            j -= 1
        return [dataclasses.replace(f, episode_start=m.time_of(j)) for f in found]

    def _hour(self, m: HourlyMatrix, i: int) -> list[Finding]:
        z = self.zrow(m, i)
        if np.isnan(z).all():
            return []
        az = np.nan_to_num(np.abs(z))
        steps = float(m.column("steps")[i])
        if steps >= STEPS_EXERCISE:
            # walking explains a raised heart rate and range
            az[0] = az[0] if z[0] < 0 else 0.0
        if steps > 0 or float(m.column("out_of_bed")[i]) > 0:
            az[1] = 0.0  # moving about explains a wide heart-rate range (a resting signal)
        j = int(np.argmax(az))
        top = float(az[j])
        forest_score = None
        outlier = False
        if self.forest is not None and top >= self.z_with_forest:
            forest_score = float(self.forest.score_samples(np.nan_to_num(z)[None, :])[0])
            outlier = forest_score < self.forest_threshold
        z_alone = self.z_alone + (1.0 if self.learning else 0.0)
        if not (top >= z_alone or outlier):
            return []
        b = 0 if int(m.local_hour[i]) in NIGHT_HOURS else 1
        feature = VITALS[j]
        observed = float(m.values[i, COL[feature]])
        expected = float(self.median[b, j])
        direction = "above" if z[j] > 0 else "below"
        severity = "high" if top >= 8 else "medium"
        detail: dict[str, Any] = {
            "direction": direction,
            "time_of_day": "night" if b == 0 else "day",
            "zscores": {
                v: round(float(zz), 2)
                for v, zz in zip(VITALS, z, strict=True)
                if not math.isnan(zz)
            },
            "learning": self.learning,
        }
        if forest_score is not None:
            detail["forest_score"] = round(forest_score, 4)
            detail["forest_threshold"] = round(self.forest_threshold, 4)
        return [
            Finding(
                kind="vitals_anomaly",
                resident_id=self.resident_id,
                at=m.time_of(i) + HOUR,
                severity=severity,
                feature=feature,
                observed=round(observed, 2),
                expected=round(expected, 2),
                z=float(z[j]),
                message=f"{feature} {observed:.1f} is {top:.1f} SD {direction} this person's "
                f"usual {expected:.1f}",
                detail=detail,
            )
        ]
