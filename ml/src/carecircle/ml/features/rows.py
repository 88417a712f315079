"""Typed inputs of the feature extraction: rollup rows and resident profiles.

``RollupRow`` mirrors one row of the pinned ``rollup_1h`` / ``rollup_1m`` tables
(one row per (bucket, device_id, code)); ``ResidentProfile`` is what the models
need from ``residents`` (care level, conditions, living alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RollupRow:
    bucket: datetime
    resident_id: str | None
    site_id: str
    device_id: str
    code: str
    n: int
    sum: float
    min: float
    max: float


@dataclass(frozen=True)
class ResidentProfile:
    resident_id: str
    site_id: str
    care_level: str = "independent"
    conditions: tuple[str, ...] = field(default_factory=tuple)
    lives_alone: bool = False

    @property
    def profile_key(self) -> str:
        """The population a resident's cold-start priors come from."""
        key = self.care_level
        if "dementia" in self.conditions:
            key += "+dementia"
        return key
