"""Pure feature extraction: rollup rows → one row per resident-hour, plus daily summaries.

Hour-of-day and day type (weekday/weekend) are taken in the deployment's local time
zone, because routines follow the clock on the wall, not UTC.

Hourly columns (``FEATURES``):

* ``motion_<room>`` — motion/presence activations in the hour, by room group (from
  ``devices.room_id`` → ``rooms.kind``); ``bathroom_presence`` counts as bathroom;
* ``door_open`` — door openings; ``steps`` — wearable steps taken in the hour.  A band
  reports ``steps`` as a counter since local midnight (the CareBand, and the
  simulator), so the hour's steps are the rise of the hourly maximum over the last
  known one of the same local day (0 at local midnight; the rise within the hour
  where the day's start is not in the window);
* ``in_bed`` — share of bed-occupancy readings saying "occupied" (carried forward
  through hours without a reading, because the mat reports changes);
* ``hr_mean``, ``hr_min``, ``hr_max``, ``hr_range`` (max − min, a heart-rate
  variability proxy), ``spo2_mean``, ``spo2_min``, ``skin_temp_mean`` — NaN when absent;
* ``activity`` — all motion plus door openings; ``out_of_bed`` — the same without
  the bedroom (what a person up and about produces);
* ``rows`` — rollup rows seen in the hour (0 = no data at all from the home);
* ``band_reports`` — the resident's band's worn-flag reports in the hour (its battery
  status carries ``worn``, every 2 minutes while in range of the home receiver, on the
  wrist or not; read from ``events``, not the rollups: the gateway drops the vitals
  and steps of a band off the wrist, so nothing else says it is there) and
  ``off_wrist`` — the share of them saying off the wrist (0 without reports).  An
  hour with a report is an hour the band was *heard* (:func:`band_heard`): at home,
  even without a heart rate.  Not counted in ``rows``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from carecircle.ml.features.rows import RollupRow

HOUR = timedelta(hours=1)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ROOM_GROUP: dict[str, str] = {
    "bedroom": "bedroom",
    "bathroom": "bathroom",
    "toilet": "bathroom",
    "kitchen": "kitchen",
    "dining": "kitchen",
    "living_room": "living",
    "activity": "living",
    "entrance": "entrance",
    "corridor": "entrance",
    "other": "other",
}
ROOMS = ("bedroom", "bathroom", "kitchen", "living", "entrance", "other")
ACTIVITY_CHANNELS = ("activity", "out_of_bed")
VITAL_FEATURES = (
    "hr_mean",
    "hr_min",
    "hr_max",
    "hr_range",
    "spo2_mean",
    "spo2_min",
    "skin_temp_mean",
)
FEATURES: tuple[str, ...] = (
    *(f"motion_{r}" for r in ROOMS),
    "door_open",
    "steps",
    "in_bed",
    *VITAL_FEATURES,
    *ACTIVITY_CHANNELS,
    "rows",
    "band_reports",
    "off_wrist",
)
COL: dict[str, int] = {name: i for i, name in enumerate(FEATURES)}
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5})
#: A day's routine starts after this local hour (earlier activity is night activity).
DAY_START_HOUR = 4
#: The reading codes the features use; other rollup rows (room climate, detectors, …)
#: are neither read nor counted in ``rows``.
FEATURE_CODES: tuple[str, ...] = (
    "motion",
    "bathroom_presence",
    "door",
    "steps",
    "bed_occupancy",
    "heart_rate",
    "spo2",
    "skin_temperature",
)
#: Rows of this code carry a band's worn-flag reports of one hour (``n`` reports,
#: ``sum`` of them saying "on the wrist"); the store builds them from the battery
#: statuses in ``events`` (the code of ``activity_state``'s worn flag, session 4).
WORN_CODE = "worn"


def floor_hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


@dataclass
class HourlyMatrix:
    """Features of one resident for consecutive hours ``start``, ``start + 1h``, …"""

    resident_id: str
    start: datetime  # UTC, on the hour
    values: FloatArray  # shape (hours, len(FEATURES))
    local_hour: IntArray  # 0..23
    weekend: IntArray  # 0 weekday, 1 weekend
    local_day: IntArray  # days since 1970-01-01 in local time

    @property
    def hours(self) -> int:
        return int(self.values.shape[0])

    def column(self, name: str) -> FloatArray:
        return self.values[:, COL[name]]

    def time_of(self, index: int) -> datetime:
        return self.start + index * HOUR

    def index_of(self, when: datetime) -> int:
        return int((floor_hour(when) - self.start) / HOUR)


def _calendar(start: datetime, hours: int, tz: ZoneInfo) -> tuple[IntArray, IntArray, IntArray]:
    local_hour = np.empty(hours, dtype=np.int64)
    weekend = np.empty(hours, dtype=np.int64)
    local_day = np.empty(hours, dtype=np.int64)
    for i in range(hours):
        local = (start + i * HOUR).astimezone(tz)
        local_hour[i] = local.hour
        weekend[i] = 1 if local.weekday() >= 5 else 0
        local_day[i] = local.date().toordinal() - 719163
    return local_hour, weekend, local_day


#: Per-hour accumulators both readers fill (pure rows below, SQL pivot in features.store).
ACCUMULATORS: tuple[str, ...] = (
    *(f"motion_{r}" for r in ROOMS),
    "door_open",
    "steps_n",
    "steps_min",
    "steps_max",
    "bed_sum",
    "bed_n",
    "hr_sum",
    "hr_n",
    "hr_min",
    "hr_max",
    "spo2_sum",
    "spo2_n",
    "spo2_min",
    "skin_sum",
    "skin_n",
    "rows",
    "worn_n",
    "worn_sum",
)
ACC: dict[str, int] = {name: i for i, name in enumerate(ACCUMULATORS)}


def empty_accumulators(hours: int) -> FloatArray:
    acc = np.zeros((hours, len(ACCUMULATORS)))
    acc[:, ACC["hr_min"]] = np.inf
    acc[:, ACC["hr_max"]] = -np.inf
    acc[:, ACC["spo2_min"]] = np.inf
    acc[:, ACC["steps_min"]] = np.inf
    acc[:, ACC["steps_max"]] = -np.inf
    return acc


def hourly_features(
    resident_id: str,
    rows: Iterable[RollupRow],
    room_kinds: Mapping[str, str | None],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> HourlyMatrix:
    """Features for hours ``[start, end)`` of one resident from its hourly rollup rows.

    ``room_kinds`` maps device ids to ``rooms.kind`` (``None`` for devices without a
    room, e.g. a wearable). Rows outside the window or of other residents are ignored.
    """
    start, end = floor_hour(start), floor_hour(end)
    hours = max(0, int((end - start) / HOUR))
    acc = empty_accumulators(hours)
    motion = {g: ACC[f"motion_{g}"] for g in ROOMS}
    for row in rows:
        if row.resident_id != resident_id:
            continue
        i = int((row.bucket - start) / HOUR)
        code = row.code
        if i < 0 or i >= hours:
            continue
        a = acc[i]
        if code == WORN_CODE:
            a[ACC["worn_n"]] += row.n
            a[ACC["worn_sum"]] += row.sum
            continue
        if code not in FEATURE_CODES:
            continue
        a[ACC["rows"]] += 1
        if code == "motion":
            kind = room_kinds.get(row.device_id) or "other"
            a[motion[ROOM_GROUP.get(kind, "other")]] += row.sum
        elif code == "bathroom_presence":
            a[motion["bathroom"]] += row.sum
        elif code == "door":
            a[ACC["door_open"]] += row.sum
        elif code == "steps":
            a[ACC["steps_n"]] += row.n
            a[ACC["steps_min"]] = min(a[ACC["steps_min"]], row.min)
            a[ACC["steps_max"]] = max(a[ACC["steps_max"]], row.max)
        elif code == "bed_occupancy":
            a[ACC["bed_sum"]] += row.sum
            a[ACC["bed_n"]] += row.n
        elif code == "heart_rate":
            a[ACC["hr_sum"]] += row.sum
            a[ACC["hr_n"]] += row.n
            a[ACC["hr_min"]] = min(a[ACC["hr_min"]], row.min)
            a[ACC["hr_max"]] = max(a[ACC["hr_max"]], row.max)
        elif code == "spo2":
            a[ACC["spo2_sum"]] += row.sum
            a[ACC["spo2_n"]] += row.n
            a[ACC["spo2_min"]] = min(a[ACC["spo2_min"]], row.min)
        elif code == "skin_temperature":
            a[ACC["skin_sum"]] += row.sum
            a[ACC["skin_n"]] += row.n
    return from_accumulators(resident_id, start, acc, tz)


def from_accumulators(
    resident_id: str, start: datetime, acc: FloatArray, tz: ZoneInfo
) -> HourlyMatrix:
    """The feature matrix from per-hour accumulators (shared by both readers)."""
    hours = int(acc.shape[0])
    out = np.zeros((hours, len(FEATURES)))
    for g in ROOMS:
        out[:, COL[f"motion_{g}"]] = acc[:, ACC[f"motion_{g}"]]
    out[:, COL["door_open"]] = acc[:, ACC["door_open"]]
    out[:, COL["rows"]] = acc[:, ACC["rows"]]
    worn_n = acc[:, ACC["worn_n"]]
    out[:, COL["band_reports"]] = worn_n
    out[:, COL["off_wrist"]] = np.where(
        worn_n > 0, (worn_n - acc[:, ACC["worn_sum"]]) / np.maximum(worn_n, 1), 0.0
    )
    local_hour, weekend, local_day = _calendar(start, hours, tz)
    out[:, COL["steps"]] = hourly_steps(acc, local_hour, local_day)

    def mean(total: str, n: str) -> FloatArray:
        k = acc[:, ACC[n]]
        result: FloatArray = np.where(k > 0, acc[:, ACC[total]] / np.maximum(k, 1), np.nan)
        return result

    def when(n: str, values: FloatArray) -> FloatArray:
        result: FloatArray = np.where(acc[:, ACC[n]] > 0, values, np.nan)
        return result

    hr_min, hr_max = acc[:, ACC["hr_min"]], acc[:, ACC["hr_max"]]
    with np.errstate(invalid="ignore"):
        out[:, COL["hr_mean"]] = mean("hr_sum", "hr_n")
        out[:, COL["hr_min"]] = when("hr_n", hr_min)
        out[:, COL["hr_max"]] = when("hr_n", hr_max)
        out[:, COL["hr_range"]] = when("hr_n", hr_max - hr_min)
        out[:, COL["spo2_mean"]] = mean("spo2_sum", "spo2_n")
        out[:, COL["spo2_min"]] = when("spo2_n", acc[:, ACC["spo2_min"]])
        out[:, COL["skin_temp_mean"]] = mean("skin_sum", "skin_n")
    bed_n, bed_sum = acc[:, ACC["bed_n"]], acc[:, ACC["bed_sum"]]
    in_bed = np.zeros(hours)
    last = 0.0
    for i in range(hours):
        if bed_n[i] > 0:
            last = bed_sum[i] / bed_n[i]
        in_bed[i] = last
    out[:, COL["in_bed"]] = in_bed
    motion = out[:, [COL[f"motion_{r}"] for r in ROOMS]].sum(axis=1)
    out[:, COL["activity"]] = motion + out[:, COL["door_open"]]
    out[:, COL["out_of_bed"]] = out[:, COL["activity"]] - out[:, COL["motion_bedroom"]]
    return HourlyMatrix(resident_id, start, out, local_hour, weekend, local_day)


def band_heard(m: HourlyMatrix) -> npt.NDArray[np.bool_]:
    """Hours in which the resident's band was heard: a heart rate (worn), or a worn-flag
    report (in range of the home receiver, on the wrist or not)."""
    heard: npt.NDArray[np.bool_] = ~np.isnan(m.column("hr_mean")) | (m.column("band_reports") > 0)
    return heard


def hourly_steps(acc: FloatArray, local_hour: IntArray, local_day: IntArray) -> FloatArray:
    """Steps taken in each hour from the band's counter since local midnight.

    The rise of the hour's maximum over the last maximum seen on the same local day;
    0 before the day's first reading when the window holds the day's midnight; the
    rise within the hour otherwise (the first hour of a window that starts mid-day).
    A counter that went down (band restarted) counts from its new value.
    """
    hours = int(acc.shape[0])
    out = np.zeros(hours)
    n, lo, hi = acc[:, ACC["steps_n"]], acc[:, ACC["steps_min"]], acc[:, ACC["steps_max"]]
    last = 0.0
    last_day: int | None = None
    first_day = int(local_day[0]) if hours else 0
    midnight_seen = hours > 0 and int(local_hour[0]) == 0
    for i in range(hours):
        if n[i] <= 0:
            continue
        day = int(local_day[i])
        if last_day == day:
            base = last
        elif day > first_day or midnight_seen:
            base = 0.0
        else:
            base = float(lo[i])
        out[i] = hi[i] - base if hi[i] >= base else hi[i] - lo[i]
        last, last_day = float(hi[i]), day
    return out


@dataclass(frozen=True)
class DailySummary:
    """One value per local day of a resident (NaN where it cannot be told)."""

    day: IntArray  # local day numbers
    weekend: IntArray
    complete: npt.NDArray[np.bool_]  # all 24 hours in the matrix, each with data
    first_activity_hour: FloatArray  # first out-of-bed activity after DAY_START_HOUR
    last_activity_hour: FloatArray
    time_in_bed_h: FloatArray
    night_bathroom: FloatArray  # bathroom activations 22:00 (previous day) – 06:00
    door_openings: FloatArray
    outings: FloatArray  # door opening followed by an hour with no indoor activity
    steps: FloatArray
    activity: FloatArray


def daily_summary(m: HourlyMatrix) -> DailySummary:
    """Per local day: wake-up, bedtime, bed time, night bathroom visits, outings, steps."""
    days = np.unique(m.local_day)
    k = len(days)
    out = {
        name: np.full(k, np.nan)
        for name in (
            "first",
            "last",
            "bed",
            "night_bath",
            "doors",
            "outings",
            "steps",
            "activity",
        )
    }
    weekend = np.zeros(k, dtype=np.int64)
    complete = np.zeros(k, dtype=bool)
    oob = m.column("out_of_bed")
    act = m.column("activity")
    bath = m.column("motion_bathroom")
    door = m.column("door_open")
    rows = m.column("rows")
    for j, day in enumerate(days):
        idx = np.nonzero(m.local_day == day)[0]
        hours = m.local_hour[idx]
        weekend[j] = m.weekend[idx[0]]
        # all 24 hours in the matrix and data in each: a day before the home was
        # installed, or with its gateway silent, says nothing about when they got up
        complete[j] = len(idx) == 24 and bool((rows[idx] > 0).all())
        awake = idx[(hours >= DAY_START_HOUR) & (oob[idx] > 0)]
        if len(awake):
            out["first"][j] = float(m.local_hour[awake[0]])
            out["last"][j] = float(m.local_hour[awake[-1]])
        out["bed"][j] = float(m.column("in_bed")[idx].sum())
        # the night that ends on this day's morning: 22, 23 of the day before, 0..5 today
        night = np.nonzero(
            ((m.local_day == day) & (m.local_hour < 6))
            | ((m.local_day == day - 1) & (m.local_hour >= 22))
        )[0]
        if len(night) == 8:
            out["night_bath"][j] = float(bath[night].sum())
        out["doors"][j] = float(door[idx].sum())
        nxt = idx + 1
        ok = nxt < m.hours
        indoor_after = np.where(
            ok, act[np.minimum(nxt, m.hours - 1)] - door[np.minimum(nxt, m.hours - 1)], 1.0
        )
        out["outings"][j] = float(((door[idx] > 0) & (indoor_after <= 0)).sum())
        out["steps"][j] = float(m.column("steps")[idx].sum())
        out["activity"][j] = float(act[idx].sum())
    return DailySummary(
        day=days.astype(np.int64),
        weekend=weekend,
        complete=complete,
        first_activity_hour=out["first"],
        last_activity_hour=out["last"],
        time_in_bed_h=out["bed"],
        night_bathroom=out["night_bath"],
        door_openings=out["doors"],
        outings=out["outings"],
        steps=out["steps"],
        activity=out["activity"],
    )
