"""What a model found in one resident-hour, with the explanation stored on the alert."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Finding:
    kind: str  # unusual_inactivity | unusual_night_activity | missed_routine | ...
    resident_id: str
    at: datetime  # end of the hour that was scored
    severity: str  # low | medium | high
    feature: str
    observed: float | str
    expected: float | str
    #: how far from normal: a z-score (vitals) or the equivalent z of a tail probability
    z: float
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    #: Start of the condition: the first hour of the run of anomalous hours it belongs
    #: to, the start of the quiet run, the morning (04:00) of a missed routine.  At most
    #: one alert is opened per (resident, kind, episode); ``None``: the scored hour.
    episode_start: datetime | None = None

    @property
    def episode(self) -> datetime:
        """:attr:`episode_start`, or the start of the scored hour."""
        return self.episode_start or self.at - timedelta(hours=1)

    def explanation(self, model: str, version: int) -> dict[str, Any]:
        return {
            "model": model,
            "version": version,
            "feature": self.feature,
            "observed": self.observed,
            "expected": self.expected,
            "z": round(self.z, 2),
            "episode_start": self.episode.isoformat(),
            **self.detail,
        }


def z_of_tail(p: float) -> float:
    """The one-sided normal z with the same tail probability ``p`` (for explanations)."""
    p = min(max(p, 1e-300), 0.5)
    if p < 1e-15:
        # NormalDist cannot go that far; the asymptotic expansion is accurate there.
        lp = -math.log(p)
        return math.sqrt(2 * lp - math.log(2 * math.pi * 2 * lp))
    return NormalDist().inv_cdf(1 - p)


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def nb_logpmf(x: Any, alpha: Any, beta: Any) -> Any:
    """Log predictive probability of a count ``x`` under a Gamma(alpha, beta) Poisson rate."""
    x = np.asarray(x, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    p = beta / (beta + 1.0)
    return (
        _lgamma(x + alpha)
        - _lgamma(alpha)
        - _lgamma(x + 1.0)
        + alpha * np.log(p)
        + x * np.log1p(-p)
    )


def nb_sf_ge(x: float, alpha: float, beta: float) -> float:
    """P(X >= x) for the Gamma–Poisson (negative binomial) predictive."""
    if x <= 0:
        return 1.0
    k = np.arange(math.ceil(x))
    cdf = float(np.exp(nb_logpmf(k, alpha, beta)).sum())
    return max(0.0, 1.0 - cdf)
