"""Coverage of the 15-minute circle: for every resident, the fastest available arrival
now and by hour of day; per township and village, the share covered within the
circle; and the places nobody can reach in time.

Pure computation over residents' and responders' coordinates and shifts
(:func:`compute_coverage`); :func:`load_points` reads them from the database.
Availability by hour follows the weekly shifts on the weekday of ``at`` (local
time), plus responders who set themselves on duty; a responder marked busy counts
as unavailable all day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from carecircle.platform.dispatch.models import AlertInfo, Location, Responder, is_available
from carecircle.platform.dispatch.policy import DispatchPolicy, covers_alert
from carecircle.platform.dispatch.travel import TravelTimeEstimator

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class ResidentPoint:
    resident_id: str
    site_id: str
    location: Location
    village_id: str | None
    township_id: str | None
    #: The site's place and its ancestors.
    places: frozenset[str]


@dataclass(frozen=True)
class ResidentCoverage:
    resident_id: str
    site_id: str
    village_id: str | None
    township_id: str | None
    eta_s: float | None
    responder_id: str | None
    by_hour: tuple[float | None, ...] = ()

    def covered(self, circle_s: float) -> bool:
        return self.eta_s is not None and self.eta_s <= circle_s


@dataclass(frozen=True)
class PlaceCoverage:
    place_id: str
    level: str  # township | village
    residents: int
    covered: int
    share: float
    share_by_hour: tuple[float, ...] = ()


@dataclass(frozen=True)
class CoverageReport:
    at: datetime
    circle_s: float
    residents: list[ResidentCoverage]
    places: list[PlaceCoverage]
    #: Sites (households, facilities) with no available responder within the circle now.
    uncovered_sites: list[dict[str, Any]]

    @property
    def share(self) -> float:
        if not self.residents:
            return 0.0
        return sum(r.covered(self.circle_s) for r in self.residents) / len(self.residents)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "circle_s": self.circle_s,
            "share_covered": round(self.share, 4),
            "places": [p.__dict__ for p in self.places],
            "uncovered_sites": self.uncovered_sites,
            "residents": [r.__dict__ for r in self.residents],
        }


def compute_coverage(
    points: Sequence[ResidentPoint],
    responders: Sequence[Responder],
    estimator: TravelTimeEstimator,
    tz: ZoneInfo,
    at: datetime,
    *,
    policy: DispatchPolicy | None = None,
    by_hour: bool = False,
    holding: frozenset[str] = frozenset(),
) -> CoverageReport:
    policy = policy or DispatchPolicy()
    circle = policy.circle_s
    pool = [r for r in responders if r.kind in policy.offer_kinds]
    local_day = at.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = [local_day + timedelta(hours=h, minutes=30) for h in range(24)] if by_hour else []
    avail_now = {r.id: is_available(r, at, tz, holding=r.id in holding) for r in pool}
    avail_hour = [{r.id: is_available(r, t, tz, holding=False) for r in pool} for t in hours]

    # ETAs per site once (residents of a household share them), nearest first
    by_site: dict[str, list[tuple[float, str]]] = {}
    out: list[ResidentCoverage] = []
    for p in points:
        if p.site_id not in by_site:
            probe = AlertInfo(0, "coverage", "high", p.site_id, p.location, at, places=p.places)
            by_site[p.site_id] = sorted(
                (estimator.eta_s(r.location, p.location, r.travel_mode), r.id)
                for r in pool
                if covers_alert(r, probe)
            )
        etas = by_site[p.site_id]
        now_best = next(((e, rid) for e, rid in etas if avail_now[rid]), None)
        hourly = tuple(next((e for e, rid in etas if av[rid]), None) for av in avail_hour)
        out.append(
            ResidentCoverage(
                p.resident_id,
                p.site_id,
                p.village_id,
                p.township_id,
                now_best[0] if now_best else None,
                now_best[1] if now_best else None,
                hourly,
            )
        )

    groups: dict[tuple[str, str], list[ResidentCoverage]] = defaultdict(list)
    for r in out:
        if r.township_id:
            groups[("township", r.township_id)].append(r)
        if r.village_id:
            groups[("village", r.village_id)].append(r)
    places = []
    for (level, pid), members in sorted(groups.items()):
        covered = sum(m.covered(circle) for m in members)
        share_by_hour = tuple(
            round(sum(_within(m.by_hour[h], circle) for m in members) / len(members), 4)
            for h in range(len(hours))
        )
        places.append(
            PlaceCoverage(
                pid, level, len(members), covered, round(covered / len(members), 4), share_by_hour
            )
        )

    uncovered: dict[str, dict[str, Any]] = {}
    for r in out:
        if not r.covered(circle):
            site = uncovered.setdefault(
                r.site_id,
                {
                    "site_id": r.site_id,
                    "village_id": r.village_id,
                    "township_id": r.township_id,
                    "eta_s": None if r.eta_s is None else round(r.eta_s),
                    "residents": 0,
                },
            )
            site["residents"] += 1
    return CoverageReport(
        at, circle, out, places, sorted(uncovered.values(), key=lambda s: str(s["site_id"]))
    )


def coverage_report(
    conn: Conn,
    estimator: TravelTimeEstimator,
    tz: ZoneInfo,
    at: datetime,
    *,
    policy: DispatchPolicy | None = None,
    by_hour: bool = False,
    resident_ids: Collection[str] | None = None,
) -> CoverageReport:
    """Coverage from the database at ``at`` (for the API and ``carecircle coverage``);
    ``resident_ids`` limits the residents counted (a caller's scope), while every
    responder who could come still counts."""
    from carecircle.platform.dispatch import registry

    points = load_points(conn)
    if resident_ids is not None:
        wanted = set(resident_ids)
        points = [p for p in points if p.resident_id in wanted]
    responders = registry.load_responders(conn)
    holding = frozenset(registry.holders(conn))
    return compute_coverage(
        points, responders, estimator, tz, at, policy=policy, by_hour=by_hour, holding=holding
    )


def _within(eta: float | None, circle_s: float) -> bool:
    return eta is not None and eta <= circle_s


def load_points(conn: Conn) -> list[ResidentPoint]:
    """Every resident with their site's location and place chain."""
    rows = conn.execute(
        """
        SELECT r.id, s.id, s.lat, s.lon,
               (WITH RECURSIVE chain(id, parent_id, level) AS (
                    SELECT p.id, p.parent_id, p.level FROM places p WHERE p.id = s.place_id
                    UNION ALL
                    SELECT p.id, p.parent_id, p.level FROM places p
                    JOIN chain c ON p.id = c.parent_id)
                SELECT json_agg(json_build_array(id, level)) FROM chain)
        FROM residents r JOIN sites s ON s.id = r.site_id ORDER BY r.id
        """
    ).fetchall()
    points = []
    for rid, sid, lat, lon, chain in rows:
        levels = {str(level): str(pid) for pid, level in (chain or [])}
        points.append(
            ResidentPoint(
                str(rid),
                str(sid),
                Location(float(lat), float(lon)),
                levels.get("village"),
                levels.get("township"),
                frozenset(str(pid) for pid, _ in (chain or [])),
            )
        )
    return points
