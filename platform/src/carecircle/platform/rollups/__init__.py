"""Per-device, per-code minute and hour rollups of readings, and their retention."""

from carecircle.platform.rollups.service import (
    RollupReport,
    RollupRetention,
    apply_rollup_retention,
    mark_dirty,
    refresh_rollups,
)

__all__ = [
    "RollupReport",
    "RollupRetention",
    "apply_rollup_retention",
    "mark_dirty",
    "refresh_rollups",
]
