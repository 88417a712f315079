"""Features from the store's hourly rollups: typed rows in, a per-resident hour matrix out."""

from carecircle.ml.features.hourly import (
    ACTIVITY_CHANNELS,
    FEATURES,
    VITAL_FEATURES,
    HourlyMatrix,
    daily_summary,
    hourly_features,
)
from carecircle.ml.features.rows import ResidentProfile, RollupRow

__all__ = [
    "ACTIVITY_CHANNELS",
    "FEATURES",
    "VITAL_FEATURES",
    "HourlyMatrix",
    "ResidentProfile",
    "RollupRow",
    "daily_summary",
    "hourly_features",
]
