"""Per-sensor liveness tracking (last seen, offline timeouts)."""

from carecircle.gateway.liveness.tracker import LivenessTracker, Silent

__all__ = ["LivenessTracker", "Silent"]
