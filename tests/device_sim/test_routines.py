"""Routine statistics seen through the sensors match the persona."""

from __future__ import annotations

import statistics

from carecircle.common.contract import Provisioning, SiteSpec
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.routines.persona import persona_for
from carecircle.device_sim.simtime import DAY_MS, parse_time

DAYS = 60


def _one_person_home() -> tuple[Provisioning, SiteSpec]:
    """Seed 21's first home of one, alone in its population."""
    pop = generate_population(PopulationParams(3, seed=21))
    home = next(s for s in pop.sites if s.capacity == 1)
    only = pop.model_copy(
        update={
            "sites": [home],
            "residents": [r for r in pop.residents if r.site_id == home.id],
            "devices": [d for d in pop.devices if d.binding.site == home.id],
            "gateways": [g for g in pop.gateways if g.site_id == home.id],
        }
    )
    return only, home


def test_wake_up_time_spread_matches_persona() -> None:
    pop, home = _one_person_home()
    resident = pop.residents[0]
    persona = persona_for(21, resident)
    assert not persona.day_care_days
    start = parse_time("2026-06-15T00:00:00+08:00")  # summer: no winter shift
    world = build_world(pop, SimConfig(seed=21, incident_scale=0))
    bath, kitchen = f"{home.id}_bathroom_motion", f"{home.id}_kitchen_motion"
    events: dict[int, list[tuple[float, str]]] = {}
    for t, topic, payload, _ in Simulation(world, start, start + DAYS * DAY_MS):
        name = topic.rsplit("/", 1)[-1]
        if name not in (bath, kitchen) or '"occupancy":true' not in payload:
            continue
        local_s = (t - start) / 1000
        day, sec = divmod(local_s, 86400)
        events.setdefault(int(day), []).append((sec, name))
    wakes = []
    for day in range(DAYS):
        evs = events.get(day, [])
        for sec, name in evs:  # the morning wash followed by breakfast in the kitchen
            if (
                name == bath
                and sec > 4 * 3600
                and any(n == kitchen and 0 < s - sec < 50 * 60 for s, n in evs)
            ):
                wakes.append(sec / 60)
                break
    assert len(wakes) >= DAYS - 3
    mean, sd = statistics.fmean(wakes), statistics.stdev(wakes)
    assert abs(mean - persona.wake_mean_min) < 10, (mean, persona.wake_mean_min)
    assert 0.6 * persona.wake_sd_min < sd < 1.5 * persona.wake_sd_min, (sd, persona.wake_sd_min)


def test_going_to_bed_triggers_the_bedroom_pir() -> None:
    """Walking into the bedroom to sleep is seen by its PIR (not only later turns in bed).

    A household's evening ends with the wash in the bathroom, then bed.  The bedroom PIR
    fires within a few minutes of the bathroom's last trigger on nearly every evening
    (it misses 2-10 % of triggers); without the entry trigger, only the random turns in
    bed (one per ~90 min) would, on about one evening in twenty.
    """
    pop, home = _one_person_home()
    days = 30
    start = parse_time("2026-06-15T00:00:00+08:00")
    world = build_world(pop, SimConfig(seed=21, incident_scale=0))
    bath, bedroom = f"{home.id}_bathroom_motion", f"{home.id}_bedroom_motion"
    seen: dict[str, list[float]] = {bath: [], bedroom: []}
    for t, topic, payload, _ in Simulation(world, start, start + days * DAY_MS):
        name = topic.rsplit("/", 1)[-1]
        if name in seen and '"occupancy":true' in payload:
            seen[name].append((t - start) / 1000)
    evenings = 0
    entered = 0
    for day in range(days):
        lo, hi = day * 86400 + 19 * 3600, (day + 1) * 86400
        washes = [s for s in seen[bath] if lo <= s < hi]
        if not washes:
            continue
        evenings += 1
        last = max(washes)
        if any(last < s <= last + 300 for s in seen[bedroom]):
            entered += 1
    assert evenings >= days - 2
    assert entered >= 0.8 * evenings, (entered, evenings)
