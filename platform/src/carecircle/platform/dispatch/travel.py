"""Travel time from a responder's location to an alert, behind a replaceable interface.

The default estimator is great-circle distance × a detour factor ÷ the speed of the
travel mode, plus a preparation time (putting on shoes, unlocking the e-bike).  A
road-network router can replace it by implementing :class:`TravelTimeEstimator`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from carecircle.platform.dispatch.models import Location, TravelMode

EARTH_RADIUS_M = 6_371_008.8

#: km/h; rural roads and lanes.
DEFAULT_SPEED_KMH: Mapping[TravelMode, float] = {
    TravelMode.WALK: 4.5,
    TravelMode.EBIKE: 15.0,
    TravelMode.CAR: 30.0,
}
#: seconds before leaving.
DEFAULT_PREPARATION_S: Mapping[TravelMode, float] = {
    TravelMode.WALK: 60.0,
    TravelMode.EBIKE: 90.0,
    TravelMode.CAR: 120.0,
}
RURAL_DETOUR = 1.3
TOWN_DETOUR = 1.2


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class TravelTimeEstimator(Protocol):
    def distance_m(self, origin: Location, dest: Location) -> float:
        """Travel distance along the way (not as the crow flies)."""
        ...

    def eta_s(self, origin: Location, dest: Location, mode: TravelMode) -> float:
        """Seconds from the moment of accepting to arriving at ``dest``."""
        ...


@dataclass(frozen=True)
class GreatCircleEstimator:
    """Haversine × detour factor ÷ speed + preparation time."""

    detour: float = RURAL_DETOUR
    speed_kmh: Mapping[TravelMode, float] = field(default_factory=lambda: dict(DEFAULT_SPEED_KMH))
    preparation_s: Mapping[TravelMode, float] = field(
        default_factory=lambda: dict(DEFAULT_PREPARATION_S)
    )

    def __post_init__(self) -> None:
        if self.detour < 1.0:
            raise ValueError("a detour factor below 1 would beat the straight line")
        if any(v <= 0 for v in self.speed_kmh.values()):
            raise ValueError("speeds must be positive")

    def distance_m(self, origin: Location, dest: Location) -> float:
        return haversine_m(origin, dest) * self.detour

    def eta_s(self, origin: Location, dest: Location, mode: TravelMode) -> float:
        metres = self.distance_m(origin, dest)
        return self.preparation_s.get(mode, 0.0) + metres / (self.speed_kmh[mode] / 3.6)
