"""Daily plans: where each resident is and what they are doing, second by second.

A plan is a sorted list of :class:`Seg` (start and end in seconds since local
midnight of the planned day; the night's sleep may run past 24:00).  ``room`` is a
room code of the site (``bed``, ``bath``, ``kit``, ``liv`` in households; ``inbed``,
``room``, ``cor``, ``din``, ``act``, ``wc`` in facilities) or ``out`` (away, the band
out of range) or ``dc`` (at the day-care centre).  ``act`` says how much the person
moves, which sets how often a PIR sees them and how their heart rate and steps go.
"""

from __future__ import annotations

import bisect
import random
from typing import NamedTuple

from carecircle.device_sim.routines.persona import Persona
from carecircle.device_sim.simtime import DAY_S


class Seg(NamedTuple):
    start: int
    end: int
    room: str
    act: str


#: Mean seconds between movements a PIR can see, by activity (0 = none at all).
MOTION_GAP_S = {
    "sleep": 5400.0,
    "active": 80.0,
    "busy": 40.0,
    "still": 700.0,
    "doze": 0.0,
    "lying": 0.0,
    "rest": 1800.0,
    "out": 0.0,
}
#: Heart-rate offset from rest, by activity.
HR_OFFSET = {
    "sleep": -7.0,
    "active": 9.0,
    "busy": 12.0,
    "still": 1.0,
    "doze": -5.0,
    "lying": 14.0,
    "rest": -2.0,
    "out": 25.0,
}
#: Steps per minute, by activity.
STEPS_PER_MIN = {"active": 9.0, "busy": 14.0, "still": 0.4, "out": 45.0}
AWAY = frozenset({"out", "dc"})


def _minutes(r: random.Random, mean: float, sd: float) -> int:
    return int(r.gauss(mean, sd) * 60)


def household_day(
    p: Persona,
    r: random.Random,
    *,
    weekday: int,
    winter: float,
    market_day: bool,
    day_care: tuple[int, int] | None,
) -> tuple[list[Seg], int, int]:
    """The plan of one ordinary day at home; returns ``(segments, wake_s, bed_s)``.

    ``winter`` is 0 (summer) .. 1 (deep winter): people rise later and go to bed
    earlier, and go out less.  ``day_care`` is ``(leave_s, back_s)`` on attendance days.
    """
    wake = _minutes(r, p.wake_mean_min + 18 * winter, p.wake_sd_min)
    wake = max(4 * 3600, min(wake, 10 * 3600))
    bed = _minutes(r, p.bed_mean_min - 22 * winter, p.bed_sd_min)
    bed = max(19 * 3600, min(bed, DAY_S - 900))
    segs: list[Seg] = []
    # The night: asleep with toilet trips.
    trips = sorted(
        int(r.uniform(3600, max(3601, wake - 1800))) for _ in range(_poisson(r, p.nocturia_mean))
    )
    cursor = 0
    for t in trips:
        if t < cursor + 600:
            continue
        segs.append(Seg(cursor, t, "bed", "sleep"))
        segs.append(Seg(t, t + 50, "bed", "active"))
        dur = r.randint(150, 360)
        segs.append(Seg(t + 50, t + 50 + dur, "bath", "busy"))
        segs.append(Seg(t + 50 + dur, t + 100 + dur, "bed", "active"))
        cursor = t + 100 + dur
    segs.append(Seg(cursor, wake, "bed", "sleep"))
    cursor = wake
    appts: list[tuple[int, int, str, str]] = [
        (wake, r.randint(480, 1100), "bath", "busy"),
        (wake + 1200, r.randint(1200, 2400), "kit", "busy"),
    ]
    if day_care is not None:
        leave, back = day_care
        appts.append((leave, back - leave, "dc", "out"))
    else:
        am = p.outing_am_prob * (1 - 0.45 * winter) + (0.25 if market_day else 0.0)
        if weekday == 6:
            am *= 0.7
        if r.random() < am:
            appts.append((int(r.uniform(7.9, 9.6) * 3600), r.randint(2700, 9000), "out", "out"))
        appts.append((int(r.uniform(11.0, 11.8) * 3600), r.randint(1800, 3000), "kit", "busy"))
        if r.random() < p.nap_prob:
            start = _minutes(r, p.nap_start_min, 15)
            appts.append((start, max(900, _minutes(r, p.nap_len_min, 12)), "bed", "sleep"))
        if r.random() < p.outing_pm_prob * (1 - 0.5 * winter):
            appts.append((int(r.uniform(15.0, 16.2) * 3600), r.randint(1800, 5400), "out", "out"))
    appts.append((int(r.uniform(17.0, 18.0) * 3600), r.randint(1800, 3000), "kit", "busy"))
    appts.sort()
    last_toilet = wake
    for start, dur, room, act in appts:
        start = max(start, cursor)
        if start >= bed - 1800:
            break
        last_toilet = _fill(segs, r, p, cursor, start, last_toilet)
        segs.append(Seg(start, start + dur, room, act))
        cursor = start + dur
        if room == "bath":
            last_toilet = cursor
    bath = r.randint(500, 900)
    evening_end = max(cursor, bed - bath)
    _fill(segs, r, p, cursor, evening_end, last_toilet)
    bed = evening_end + bath
    segs.append(Seg(evening_end, bed, "bath", "busy"))
    segs.append(Seg(bed, DAY_S + 8 * 3600, "bed", "sleep"))
    return segs, wake, bed


def _fill(segs: list[Seg], r: random.Random, p: Persona, lo: int, hi: int, last_toilet: int) -> int:
    """Fill ``[lo, hi)`` with living-room time, toilet visits and short kitchen trips."""
    t = lo
    next_toilet = last_toilet + int(r.expovariate(1 / (p.toilet_every_min * 60)))
    while t < hi:
        if next_toilet <= t and hi - t > 600:
            dur = r.randint(180, 420)
            segs.append(Seg(t, t + dur, "bath", "busy"))
            t += dur
            next_toilet = t + int(r.expovariate(1 / (p.toilet_every_min * 60)))
            continue
        evening = t > 19 * 3600
        if r.random() < 0.08 and not evening:
            dur = r.randint(120, 480)
            room, act = "kit", "busy"
        elif r.random() < (0.75 if evening else 0.45):
            dur, room, act = r.randint(600, 2400), "liv", "still"
        else:
            dur, room, act = r.randint(300, 1500), "liv", "active"
        end = min(hi, t + dur, max(next_toilet, t + 120))
        segs.append(Seg(t, end, room, act))
        t = end
    return next_toilet


def _poisson(r: random.Random, mean: float) -> int:
    n, acc, limit = 0, r.random(), pow(2.718281828459045, -mean)
    while acc > limit:
        n += 1
        acc *= r.random()
    return n


def facility_day(
    p: Persona, r: random.Random, *, dependent: bool, winter: float
) -> tuple[list[Seg], int, int]:
    """A nursing-home resident's day: institutional meal times, naps, night in bed."""
    wake = max(5 * 3600, _minutes(r, 375 + 10 * winter, 12 + p.wake_sd_min / 3))
    bed = min(DAY_S - 1800, _minutes(r, 1230, 20))
    segs: list[Seg] = []
    cursor = 0
    trips = sorted(
        int(r.uniform(3600, wake - 1800)) for _ in range(_poisson(r, p.nocturia_mean * 0.8))
    )
    for t in trips:
        if dependent or t < cursor + 600:
            continue
        segs.append(Seg(cursor, t, "inbed", "sleep"))
        dur = r.randint(180, 420)
        segs.append(Seg(t, t + dur, "room", "busy"))
        cursor = t + dur
    segs.append(Seg(cursor, wake, "inbed", "sleep"))
    if dependent:  # bed-bound: washed, sat up in a chair twice a day, meals in the room
        plan = [
            (wake, 1800, "room", "busy"),
            (wake + 1800, 3 * 3600, "inbed", "rest"),
            (10 * 3600, 2 * 3600, "room", "still"),
            (12 * 3600, 4 * 3600, "inbed", "rest"),
            (16 * 3600, 7200, "room", "still"),
        ]
    else:
        plan = [
            (wake, 1500, "room", "busy"),
            (7 * 3600, 2400, "din", "busy"),
            (int(7.7 * 3600), int(3.2 * 3600), "act", "active"),
            (11 * 3600, 2700, "din", "busy"),
            (int(11.75 * 3600), r.randint(4000, 7800), "inbed", "sleep"),
            (int(14.25 * 3600), 8100, "act", "active"),
            (int(16.5 * 3600), 2700, "din", "busy"),
            (int(17.25 * 3600), 3600 * 2, "act", "still"),
        ]
    t = wake
    for start, dur, room, act in plan:
        start = max(start, t)
        if start > t:
            segs.append(Seg(t, start, "room", "still"))
        segs.append(Seg(start, start + dur, room, act))
        t = start + dur
    bed = max(bed, t + 600)
    segs.append(Seg(t, bed, "room", "active"))
    segs.append(Seg(bed, DAY_S + 6 * 3600, "inbed", "sleep"))
    return segs, wake, bed


def overlay(segs: list[Seg], new: list[Seg]) -> list[Seg]:
    """Replace whatever ``segs`` plan during ``new``'s span by ``new``."""
    if not new:
        return segs
    lo, hi = new[0].start, new[-1].end
    out: list[Seg] = []
    for s in segs:
        if s.end <= lo or s.start >= hi:
            out.append(s)
            continue
        if s.start < lo:
            out.append(s._replace(end=lo))
        if s.end > hi:
            out.append(s._replace(start=hi))
    out.extend(new)
    out.sort(key=lambda s: (s.start, s.end))
    return out


def at(segs: list[Seg], t: int) -> Seg | None:
    """The segment in force at ``t`` (``None`` outside the plan)."""
    i = bisect.bisect_right([s.start for s in segs], t) - 1
    if i >= 0 and segs[i].start <= t < segs[i].end:
        return segs[i]
    return None
