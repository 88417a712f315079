"""A small seeded generator of hourly rollups for residents with daily routines.

Used by the tests and the bench until the device simulator's rollups are available:
each resident has a routine (wake-up and bed time, meals in the kitchen, bathroom
visits, naps for some, outings through the front door, steps and vitals from a
wearable, a bed mat), turned into ``rollup_1h``-shaped rows, with labelled
incidents injected (prolonged inactivity, missed wake-up, rising night bathroom
visits, a raised heart rate) and benign look-alikes (away from home).  Traits of
the population come from ``population_seed``; the days from ``seed``, so a month
generated with another seed is new days of the same people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from carecircle.ml.evaluation.records import TruthIncident
from carecircle.ml.features.rows import ResidentProfile, RollupRow

HOUR = timedelta(hours=1)
ROOMS = ("bedroom", "bathroom", "kitchen", "living_room", "entrance")


@dataclass(frozen=True)
class Traits:
    profile: ResidentProfile
    wake: float  # local hour
    bed: float
    level: float  # activations per awake hour
    napper: bool
    night_bath: float  # bathroom visits per night
    steps: float  # steps per awake hour
    hr: float
    spo2: float
    skin: float
    outing_p: float  # chance of an outing on a day


@dataclass
class Incidents:
    inactivity_per_month: float = 0.0
    missed_wakeup_per_month: float = 0.0
    tachycardia_per_month: float = 0.0
    #: residents whose night bathroom visits double over the last 10 days
    drift_share: float = 0.0


@dataclass
class SynthData:
    rows: list[RollupRow]
    room_kinds: dict[str, str | None]
    profiles: dict[str, ResidentProfile]
    truth: list[TruthIncident] = field(default_factory=list)


def population(n: int, population_seed: int) -> list[Traits]:
    rng = np.random.default_rng(population_seed)
    out = []
    for k in range(n):
        care = ["independent", "assisted", "dependent"][int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
        conditions = ("dementia",) if rng.random() < 0.1 else ()
        rid = f"r-{population_seed % 1000:03d}-{k:05d}"
        profile = ResidentProfile(
            resident_id=rid,
            site_id=f"hh-{population_seed % 1000:03d}-{k:05d}",
            care_level=care,
            conditions=conditions,
            lives_alone=bool(rng.random() < 0.6),
        )
        slow = {"independent": 1.0, "assisted": 0.7, "dependent": 0.45}[care]
        out.append(
            Traits(
                profile=profile,
                wake=float(np.clip(rng.normal(6.5, 1.2), 4.5, 9.8)),
                bed=float(np.clip(rng.normal(21.5, 0.8), 19.5, 23.5)),
                level=float(rng.uniform(4, 14) * slow),
                napper=bool(rng.random() < 0.35),
                night_bath=float(rng.uniform(0.3, 2.0)),
                steps=float(rng.uniform(100, 500) * slow),
                hr=float(rng.normal(70, 7)),
                spo2=float(np.clip(rng.normal(96.5, 1.0), 93, 99)),
                skin=float(rng.normal(33.0, 0.6)),
                outing_p=float(rng.uniform(0.1, 0.6) * slow),
            )
        )
    return out


def _devices(t: Traits) -> dict[str, str | None]:
    rid = t.profile.resident_id
    devs: dict[str, str | None] = {f"{rid}-pir-{room}": room for room in ROOMS[:4]}
    devs[f"{rid}-door"] = "entrance"
    devs[f"{rid}-bed"] = "bedroom"
    devs[f"{rid}-band"] = None
    return devs


def generate(
    traits: list[Traits],
    start: datetime,
    days: int,
    seed: int,
    tz: ZoneInfo,
    incidents: Incidents | None = None,
) -> SynthData:
    """Hourly rollup rows for ``days`` local days from ``start`` (a local midnight, aware)."""
    rng = np.random.default_rng(seed)
    inc = incidents or Incidents()
    rows: list[RollupRow] = []
    room_kinds: dict[str, str | None] = {}
    truth: list[TruthIncident] = []
    start_local = start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for t in traits:
        devs = _devices(t)
        room_kinds.update(devs)
        rid, site = t.profile.resident_id, t.profile.site_id
        drifting = rng.random() < inc.drift_share
        for d in range(days):
            day0 = start_local + timedelta(days=d)
            weekend = day0.weekday() >= 5
            wake = t.wake + (0.6 if weekend else 0.0) + rng.normal(0, 0.35)
            bed = t.bed + rng.normal(0, 0.4)
            quiet: set[int] = set()  # hours with no activity at all
            out_hours: set[int] = set()
            door_hours: set[int] = set()
            # naps: nappers doze in a chair after lunch most days
            if t.napper and rng.random() < 0.85:
                nap = int(rng.integers(13, 15))
                quiet.update(range(nap, nap + int(rng.integers(2, 4))))
            if rng.random() < t.outing_p:
                go = int(rng.integers(9, 16))
                length = int(rng.integers(1, 4))
                out_hours.update(range(go + 1, go + 1 + length))
                door_hours.update({go, go + 1 + length})
            # incidents
            p_day = 1.0 / 30.0
            if rng.random() < inc.missed_wakeup_per_month * p_day:
                late = wake + float(rng.uniform(2.5, 4.5))
                truth.append(
                    _incident(rid, site, "missed_wakeup", day0, wake, late, len(truth), tz)
                )
                wake = late
            elif rng.random() < inc.inactivity_per_month * p_day:
                begin = int(rng.integers(max(9, int(wake) + 2), 18))
                length = int(rng.integers(2, 6))
                quiet.update(range(begin, begin + length))
                out_hours.difference_update(range(begin - 1, begin + length + 1))
                door_hours.difference_update(range(begin - 1, begin + length + 1))
                truth.append(
                    _incident(
                        rid,
                        site,
                        "prolonged_inactivity",
                        day0,
                        begin,
                        begin + length,
                        len(truth),
                        tz,
                    )
                )
            elif rng.random() < 0.3 * inc.inactivity_per_month * p_day:
                # benign: a long afternoon away, leaving by the front door
                go = int(rng.integers(9, 13))
                length = int(rng.integers(4, 7))
                out_hours.update(range(go + 1, go + 1 + length))
                door_hours.update({go, go + 1 + length})
                truth.append(
                    _incident(
                        rid,
                        site,
                        "away_from_home",
                        day0,
                        go + 1,
                        go + 1 + length,
                        len(truth),
                        tz,
                        benign=True,
                    )
                )
            tachy: set[int] = set()
            if rng.random() < inc.tachycardia_per_month * p_day:
                h = int(rng.integers(8, 20))
                tachy.update({h, h + 1})
                truth.append(_incident(rid, site, "tachycardia", day0, h, h + 2, len(truth), tz))
            night_rate = t.night_bath
            if drifting and d >= days - 10:
                night_rate = t.night_bath * 2.2 + 1.0
                if d == days - 10:
                    truth.append(
                        _incident(rid, site, "routine_drift", day0, 0, 24 * 10, len(truth), tz)
                    )
            night_visits = rng.poisson(night_rate)
            visit_hours = rng.choice([0, 1, 2, 3, 4, 5], size=night_visits)
            day_steps = 0  # the band's counter since local midnight
            for h in range(24):
                bucket = (day0 + h * HOUR).astimezone(ZoneInfo("UTC"))
                awake = wake <= h + 0.5 < bed
                counts = dict.fromkeys(ROOMS, 0)
                steps = 0
                if awake and h not in quiet and h not in out_hours:
                    lam = t.level * (0.6 if h < wake + 1 else 1.0)
                    n = rng.poisson(lam)
                    meal = h in (7, 12, 18)
                    p = np.array(
                        [0.12, 0.12, 0.4 if meal else 0.15, 0.61 if not meal else 0.36, 0.0]
                    )
                    p = p / p.sum()
                    for room, c in zip(ROOMS, rng.multinomial(n, p), strict=True):
                        counts[room] += int(c)
                    steps = int(rng.poisson(t.steps))
                elif h in out_hours:
                    steps = int(rng.poisson(t.steps * 4))
                elif not awake:
                    counts["bedroom"] += int(rng.poisson(0.5))
                if h in door_hours:
                    counts["entrance"] += 1
                if h < 6:
                    v = int((visit_hours == h).sum())
                    counts["bathroom"] += 2 * v
                    counts["bedroom"] += v
                for room in ROOMS[:4]:
                    c = counts[room]
                    rows.append(
                        RollupRow(
                            bucket,
                            rid,
                            site,
                            f"{rid}-pir-{room}",
                            "motion",
                            2 * c,
                            c,
                            0,
                            1 if c else 0,
                        )
                    )
                    rows.append(
                        RollupRow(
                            bucket, rid, site, f"{rid}-pir-{room}", "battery", 1, 90.0, 90.0, 90.0
                        )
                    )
                if counts["entrance"]:
                    c = counts["entrance"]
                    rows.append(RollupRow(bucket, rid, site, f"{rid}-door", "door", 2 * c, c, 0, 1))
                occ = 0.0 if awake or h in out_hours else 1.0
                rows.append(
                    RollupRow(
                        bucket, rid, site, f"{rid}-bed", "bed_occupancy", 60, 60 * occ, occ, occ
                    )
                )
                if steps:
                    before, day_steps = day_steps, day_steps + steps
                    rows.append(
                        RollupRow(
                            bucket,
                            rid,
                            site,
                            f"{rid}-band",
                            "steps",
                            12,
                            12 * (before + day_steps) / 2,
                            before,
                            day_steps,
                        )
                    )
                hr = (
                    t.hr
                    + (6.0 if awake else -4.0)
                    + (4.0 if h in out_hours else 0.0)
                    + rng.normal(0, 1.5)
                )
                if h in tachy:
                    hr += 38.0
                spread = 6.0 + rng.normal(0, 1.0)
                rows.append(
                    RollupRow(
                        bucket,
                        rid,
                        site,
                        f"{rid}-band",
                        "heart_rate",
                        60,
                        60 * hr,
                        hr - spread,
                        hr + spread,
                    )
                )
                spo2 = min(100.0, t.spo2 + rng.normal(0, 0.4))
                rows.append(
                    RollupRow(
                        bucket,
                        rid,
                        site,
                        f"{rid}-band",
                        "spo2",
                        12,
                        12 * spo2,
                        spo2 - 1.0,
                        min(100.0, spo2 + 1.0),
                    )
                )
                skin = t.skin + rng.normal(0, 0.15) - (0.5 if not awake else 0.0)
                rows.append(
                    RollupRow(
                        bucket,
                        rid,
                        site,
                        f"{rid}-band",
                        "skin_temperature",
                        60,
                        60 * skin,
                        skin - 0.2,
                        skin + 0.2,
                    )
                )
    return SynthData(rows, room_kinds, {t.profile.resident_id: t.profile for t in traits}, truth)


def _incident(
    rid: str,
    site: str,
    kind: str,
    day0: datetime,
    start_h: float,
    end_h: float,
    n: int,
    tz: ZoneInfo,
    *,
    benign: bool = False,
) -> TruthIncident:
    utc = ZoneInfo("UTC")
    start = (day0 + timedelta(hours=start_h)).astimezone(utc)
    end = (day0 + timedelta(hours=end_h)).astimezone(utc)
    return TruthIncident(
        incident_id=f"{rid}-{n}-{kind}-{math.floor(start.timestamp())}",
        resident_id=rid,
        site_id=site,
        kind=kind,
        benign=benign,
        start=start,
        end=end,
    )
