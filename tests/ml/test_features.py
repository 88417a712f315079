"""Feature extraction: typed rollup rows → hourly matrix and daily summary (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carecircle.ml.features.hourly import COL, daily_summary, hourly_features
from carecircle.ml.features.rows import ResidentProfile, RollupRow

TZ = ZoneInfo("Asia/Shanghai")
# 2026-11-29 is a Sunday; 00:00 local = 16:00 UTC the day before
T0 = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
H = timedelta(hours=1)
ROOMS = {
    "pir-bath": "bathroom",
    "pir-wc": "toilet",
    "pir-kit": "kitchen",
    "band": None,
    "door": "entrance",
    "bed": "bedroom",
    "pir-bed": "bedroom",
}


def row(
    hour: int, device: str, code: str, n: int, s: float, lo: float, hi: float, resident: str = "r1"
) -> RollupRow:
    return RollupRow(T0 + hour * H, resident, "hh1", device, code, n, s, lo, hi)


def test_rows_are_grouped_by_room_kind_and_vitals_are_weighted_means() -> None:
    rows = [
        row(7, "pir-bath", "motion", 6, 3, 0, 1),
        row(7, "pir-wc", "bathroom_presence", 2, 1, 0, 1),
        row(7, "pir-kit", "motion", 8, 4, 0, 1),
        row(7, "door", "door", 2, 1, 0, 1),
        row(7, "band", "heart_rate", 30, 30 * 70, 60, 80),
        row(7, "bed", "heart_rate", 10, 10 * 62, 58, 66),
        row(7, "band", "spo2", 4, 4 * 96, 95, 97),
        row(7, "band", "steps", 3, 150, 40, 60),  # the band's counter since midnight
        row(5, "band", "steps", 2, 80, 40, 40),
        row(7, "pir-kit", "motion", 2, 1, 0, 1, resident="someone-else"),
        row(2, "bed", "bed_occupancy", 4, 4, 1, 1),
    ]
    m = hourly_features("r1", rows, ROOMS, T0, T0 + 24 * H, TZ)
    assert m.hours == 24
    v = m.values[7]
    assert v[COL["motion_bathroom"]] == 4  # bathroom and toilet, motion and presence
    assert v[COL["motion_kitchen"]] == 4  # the other resident's row is not counted
    assert v[COL["door_open"]] == 1 and v[COL["steps"]] == 20  # 60 - 40 seen at 05:00
    assert m.column("steps")[5] == 40  # the window holds midnight: counted from 0
    assert math.isclose(v[COL["hr_mean"]], (30 * 70 + 10 * 62) / 40)
    assert v[COL["hr_min"]] == 58 and v[COL["hr_max"]] == 80 and v[COL["hr_range"]] == 22
    assert v[COL["spo2_mean"]] == 96 and v[COL["spo2_min"]] == 95
    assert v[COL["activity"]] == 9 and v[COL["out_of_bed"]] == 9
    assert math.isnan(m.values[6, COL["hr_mean"]])
    # bed occupancy is carried forward through hours without a reading
    assert m.column("in_bed")[2:7].tolist() == [1.0] * 5 and m.column("in_bed")[1] == 0
    assert m.local_hour[7] == 7 and m.weekend[7] == 1  # Sunday in Shanghai
    assert m.column("rows")[7] == 8 and m.column("rows")[8] == 0


def test_steps_are_the_rise_of_the_daily_counter() -> None:
    """The band's counter restarts at local midnight; a window starting mid-day counts
    only the rise within its first hour; a counter that went down starts again."""
    rows = [
        row(-3, "band", "steps", 4, 4 * 900, 880, 950),  # 21:00 Saturday, mid-day start
        row(-1, "band", "steps", 4, 4 * 1000, 990, 1010),  # 23:00
        row(1, "band", "steps", 4, 4 * 5, 0, 12),  # 01:00 Sunday, new day
        row(3, "band", "steps", 4, 4 * 30, 20, 40),
        row(9, "band", "steps", 4, 4 * 3, 0, 7),  # band restarted: counts from 0 again
    ]
    m = hourly_features("r1", rows, ROOMS, T0 - 3 * H, T0 + 12 * H, TZ)
    steps = m.column("steps")
    assert steps[0] == 70  # first hour, the day's start unseen: rise within the hour
    assert steps[2] == 1010 - 950
    assert steps[4] == 12 and steps[6] == 40 - 12
    assert steps[12] == 7
    assert steps.sum() == 70 + 60 + 12 + 28 + 7


def test_daily_summary_wake_up_night_bathroom_and_outings() -> None:
    rows = [
        # the night before (22:00 local Saturday) and the early hours: bathroom visits
        RollupRow(T0 - 2 * H, "r1", "hh1", "pir-bath", "motion", 4, 2, 0, 1),
        row(3, "pir-bath", "motion", 2, 1, 0, 1),
        row(3, "pir-bed", "motion", 2, 1, 0, 1),
        row(6, "pir-kit", "motion", 2, 1, 0, 1),  # up at 06:00
        row(10, "door", "door", 2, 1, 0, 1),  # goes out at 10, nothing indoors at 11
        row(12, "pir-kit", "motion", 2, 1, 0, 1),
        row(20, "pir-kit", "motion", 2, 1, 0, 1),
        row(9, "band", "steps", 1, 500, 500, 500),  # counter since midnight
    ]
    m = hourly_features("r1", rows, ROOMS, T0 - 24 * H, T0 + 24 * H, TZ)
    s = daily_summary(m)
    assert len(s.day) == 2
    sunday = 1
    assert s.first_activity_hour[sunday] == 6  # 03:00 is night activity, not wake-up
    assert s.last_activity_hour[sunday] == 20
    assert s.night_bathroom[sunday] == 3
    assert s.outings[sunday] == 1 and s.door_openings[sunday] == 1
    assert s.steps[sunday] == 500
    # hours without any data (a home not yet installed, a silent gateway) make the day
    # incomplete: it says nothing about when the person got up
    assert not bool(s.complete[sunday])
    assert math.isnan(s.night_bathroom[0])  # its night is not in the window


def test_profile_key_groups_by_care_level_and_dementia() -> None:
    assert ResidentProfile("r", "s", "assisted", ("dementia",)).profile_key == "assisted+dementia"
    assert ResidentProfile("r", "s").profile_key == "independent"
