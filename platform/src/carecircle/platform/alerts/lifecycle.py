"""The alert lifecycle as pure data and functions.

``open → acknowledged → dispatched → on_scene → resolved``, with ``cancelled`` (and
``resolved``) reachable from any active state.  Steps may be skipped forward (a
responder can accept before staff acknowledge), never backwards.
"""

from __future__ import annotations

from enum import StrEnum

from carecircle.common.errors import Conflict


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Outcome(StrEnum):
    REAL_INCIDENT = "real_incident"
    FALSE_ALARM = "false_alarm"
    RESIDENT_FINE = "resident_fine"


ACTIVE: frozenset[Status] = frozenset(
    {Status.OPEN, Status.ACKNOWLEDGED, Status.DISPATCHED, Status.ON_SCENE}
)
_ORDER = [Status.OPEN, Status.ACKNOWLEDGED, Status.DISPATCHED, Status.ON_SCENE, Status.RESOLVED]


def check_transition(current: Status, target: Status) -> None:
    """Raise :class:`Conflict` unless ``current → target`` is allowed."""
    if current not in ACTIVE:
        raise Conflict(f"alert is already {current.value}")
    if target is Status.CANCELLED:
        return
    if target is Status.OPEN or _ORDER.index(target) <= _ORDER.index(current):
        raise Conflict(f"an alert that is {current.value} cannot become {target.value}")


#: Which timestamp column a status sets.
TIMESTAMP_COLUMN: dict[Status, str] = {
    Status.ACKNOWLEDGED: "acknowledged_at",
    Status.DISPATCHED: "dispatched_at",
    Status.ON_SCENE: "on_scene_at",
    Status.RESOLVED: "closed_at",
    Status.CANCELLED: "closed_at",
}
