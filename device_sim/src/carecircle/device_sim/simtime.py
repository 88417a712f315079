"""Simulated time and seeded randomness shared by every part of the simulator.

All simulated times are integer milliseconds since the Unix epoch (UTC).  Daily
routines are planned in local time (China Standard Time, UTC+8, no daylight saving),
in seconds since local midnight.  Every random draw comes from a ``random.Random``
seeded from the master seed and a path of names (``rng(seed, "site", "hh-000001",
"day", 3)``), never from the global generator, so the same seed gives the same
stream on every machine and every run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

DAY_S = 86_400
DAY_MS = DAY_S * 1000
HOUR_S = 3600
#: Local time of the simulated prefecture (Asia/Shanghai has no daylight saving).
LOCAL_OFFSET_S = 8 * HOUR_S
LOCAL_TZ = timezone(timedelta(seconds=LOCAL_OFFSET_S))


def rng(seed: int, *path: object) -> random.Random:
    """A generator seeded from the master seed and a path of names (stable across runs)."""
    return random.Random("|".join([str(seed), *(str(p) for p in path)]))


def to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("simulated times must be timezone-aware")
    return round(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def iso_utc(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-01-12T00:00:00.000Z``."""
    secs, milli = divmod(ms, 1000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{milli:03d}Z"


def iso_local(ms: int) -> str:
    """RFC 3339 in local time with whole seconds, e.g. ``2026-11-29T02:13:00+08:00``."""
    return datetime.fromtimestamp(ms // 1000, LOCAL_TZ).isoformat()


def local_midnight_ms(ms: int) -> int:
    """The epoch milliseconds of local midnight at or before ``ms``."""
    local = ms + LOCAL_OFFSET_S * 1000
    return local - local % DAY_MS - LOCAL_OFFSET_S * 1000


def local_date(day_start_ms: int) -> datetime:
    return datetime.fromtimestamp(day_start_ms / 1000, LOCAL_TZ)


def parse_time(text: str) -> int:
    """Epoch ms from RFC 3339 (``Z`` or an offset; naive means local time) or epoch ms/s."""
    stripped = text.strip()
    if stripped.lstrip("-").replace(".", "", 1).isdigit():
        value = float(stripped)
        return int(value if value > 1e11 else value * 1000)
    when = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    return to_ms(when)
