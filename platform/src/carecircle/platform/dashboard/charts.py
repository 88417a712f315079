"""Small server-rendered SVG: line and bar charts, and the map of the circle.

Pure functions from numbers to SVG markup; no JavaScript, no tiles, no CDN, so pages
render fast on an ordinary PC that may be offline from the internet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WALK_RADIUS_M = 1000.0  # the 15-minute circle on foot
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class Point:
    t: datetime
    value: float


def line_chart(
    points: Sequence[Point],
    start: datetime,
    end: datetime,
    *,
    width: int = 560,
    height: int = 120,
    unit: str = "",
    bars: bool = False,
) -> str:
    """An SVG chart of ``points`` over [start, end]: a line, or bars for counts."""
    if not points:
        return ""
    pad_l, pad_r, pad_t, pad_b = 40, 8, 8, 18
    lo = min(p.value for p in points)
    hi = max(p.value for p in points)
    if bars:
        lo = 0.0
    if hi - lo < 1e-9:
        hi, lo = hi + 1, lo - (0 if bars else 1)
    span = (end - start).total_seconds() or 1.0
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t: datetime) -> float:
        return pad_l + w * max(0.0, min(1.0, (t - start).total_seconds() / span))

    def y(v: float) -> float:
        return pad_t + h * (1 - (v - lo) / (hi - lo))

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" class="axis"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" class="tick" text-anchor="end">{hi:.0f}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + h}" class="tick" text-anchor="end">{lo:.0f}</text>',
        f'<text x="{pad_l}" y="{height - 4}" class="tick">{start:%m-%d %H:%M}</text>',
        f'<text x="{pad_l + w}" y="{height - 4}" class="tick" text-anchor="end">'
        f"{end:%m-%d %H:%M} {escape(unit)}</text>",
    ]
    if bars:
        bw = max(1.0, w / max(1.0, span / 3600) - 1)
        for p in points:
            top = y(p.value)
            parts.append(
                f'<rect x="{x(p.t):.1f}" y="{top:.1f}" width="{bw:.1f}" '
                f'height="{pad_t + h - top:.1f}" class="bar"/>'
            )
    else:
        coords = " ".join(f"{x(p.t):.1f},{y(p.value):.1f}" for p in points)
        parts.append(f'<polyline points="{coords}" class="line" fill="none"/>')
    parts.append("</svg>")
    return "".join(parts)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class MapItem:
    kind: str  # household | facility | responder
    id: str
    label: str
    lat: float
    lon: float
    alert: bool = False
    on_duty: bool = False
    href: str | None = None


def map_svg(items: Sequence[MapItem], *, width: int = 900, height: int = 600) -> str:
    """An equirectangular projection of the items fitted to the box, with 1 km circles
    around on-duty responders."""
    if not items:
        return ""
    lat0 = sum(i.lat for i in items) / len(items)
    k = math.cos(math.radians(lat0))
    xs = [i.lon * k for i in items]
    ys = [i.lat for i in items]
    margin_deg = WALK_RADIUS_M / 111_320.0
    min_x, max_x = min(xs) - margin_deg, max(xs) + margin_deg
    min_y, max_y = min(ys) - margin_deg, max(ys) + margin_deg
    scale = min(width / (max_x - min_x), height / (max_y - min_y))

    def px(i: MapItem) -> tuple[float, float]:
        return (i.lon * k - min_x) * scale, (max_y - i.lat) * scale

    radius_px = margin_deg * scale
    parts = [
        f'<svg class="map" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><rect width="{width}" height="{height}" class="bg"/>'
    ]
    for i in items:
        if i.kind == "responder" and i.on_duty:
            x, y = px(i)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius_px:.1f}" class="reach"/>')
    for i in items:
        x, y = px(i)
        title = f"<title>{escape(i.label)}</title>"
        if i.kind == "household":
            cls = "home alert" if i.alert else "home"
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" class="{cls}">{title}</circle>'
        elif i.kind == "facility":
            shape = (
                f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" '
                f'class="facility">{title}</rect>'
            )
        else:
            cls = "responder" if i.on_duty else "responder off"
            shape = (
                f'<polygon points="{x:.1f},{y - 7:.1f} {x - 6:.1f},{y + 5:.1f} '
                f'{x + 6:.1f},{y + 5:.1f}" class="{cls}">{title}</polygon>'
            )
        if i.href:
            shape = f'<a href="{escape(i.href)}">{shape}</a>'
        parts.append(shape)
    parts.append("</svg>")
    return "".join(parts)
