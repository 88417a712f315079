"""Personas: each resident's habits and physiology, derived from the seed and their profile.

A persona is a pure function of ``(seed, resident)``: the provisioning document
(age, conditions, care level) plus the master seed give the same habits on every run,
so ``population.json`` and ``--seed`` are all a later ``sim run`` needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from carecircle.common.contract.provisioning import ResidentSpec
from carecircle.device_sim.population.generate import REFERENCE_YEAR
from carecircle.device_sim.simtime import rng


@dataclass(frozen=True)
class Persona:
    resident_id: str
    #: Usual wake-up time, minutes after local midnight, and its day-to-day spread (sd).
    wake_mean_min: float
    wake_sd_min: float
    #: Usual bedtime (may exceed 24:00 slightly) and spread.
    bed_mean_min: float
    bed_sd_min: float
    #: Mean number of night-time toilet trips (Poisson).
    nocturia_mean: float
    #: Probability of an after-lunch nap in bed, its start and length (minutes).
    nap_prob: float
    nap_start_min: float
    nap_len_min: float
    #: Probability of a morning / afternoon outing on an ordinary day.
    outing_am_prob: float
    outing_pm_prob: float
    #: Day-time toilet visits every this many minutes on average.
    toilet_every_min: float
    #: Resting heart rate, SpO2 and skin temperature of the wrist.
    hr_rest: float
    spo2_base: float
    skin_temp: float
    #: Probability the band is left off for the whole day.
    band_forget_prob: float
    #: Local weekdays (0 = Monday) of day-care attendance.
    day_care_days: tuple[int, ...]
    dementia: bool
    limited_mobility: bool


def persona_for(seed: int, res: ResidentSpec) -> Persona:
    r = rng(seed, "persona", res.id)
    cond = set(res.conditions)
    age = REFERENCE_YEAR - (res.birth_year or REFERENCE_YEAR - 78)
    dementia = "dementia" in cond
    mobility = "limited_mobility" in cond or res.care_level == "dependent"
    wake_sd = r.uniform(12, 30) * (1.8 if dementia else 1.0)
    hr_rest = r.uniform(58, 78) + (4 if "heart_disease" in cond else 0)
    spo2 = r.uniform(95, 98) - (3.0 if "copd" in cond else 0.0)
    days = res.care_profile.get("day_care_days") if res.day_care_site_id else None
    return Persona(
        resident_id=res.id,
        wake_mean_min=r.uniform(330, 440) + (age - 75) * 0.6,
        wake_sd_min=wake_sd,
        bed_mean_min=r.uniform(1230, 1350),
        bed_sd_min=r.uniform(15, 35) * (1.5 if dementia else 1.0),
        nocturia_mean=r.uniform(0.5, 1.8) + (0.8 if "diabetes" in cond else 0.0),
        nap_prob=r.uniform(0.35, 0.85),
        nap_start_min=r.uniform(765, 830),
        nap_len_min=r.uniform(30, 80),
        outing_am_prob=r.uniform(0.25, 0.7) * (0.3 if mobility else 1.0),
        outing_pm_prob=r.uniform(0.1, 0.35) * (0.3 if mobility else 1.0),
        toilet_every_min=r.uniform(120, 200) * (0.8 if "diabetes" in cond else 1.0),
        hr_rest=hr_rest,
        spo2_base=spo2,
        skin_temp=r.uniform(32.4, 34.0),
        band_forget_prob=r.uniform(0.02, 0.06) * (3 if dementia else 1),
        day_care_days=tuple(int(d) for d in days) if isinstance(days, list) else (),
        dementia=dementia,
        limited_mobility=mobility,
    )
