"""The radar fall sensor (HEIMAN HS2FD): payloads, room-bound detection, the population
share, and the default leaving every world as it was."""

from __future__ import annotations

import json
import random

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.devices.catalog import RADAR, RADAR_FALL_DETECTION
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, SiteModel, build_world
from carecircle.device_sim.incidents.planner import radar_detects
from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.device_sim.simtime import DAY_MS, parse_time

DAY0 = parse_time("2026-01-13T00:00:00+08:00")


def _radar_world(seed: int = 11) -> tuple[Provisioning, SiteModel]:
    pop = generate_population(PopulationParams(6, seed=seed, radar_bathroom_share=1.0))
    world = build_world(pop, SimConfig(seed=seed, incident_scale=0, imperfect=False))
    site = next(
        s
        for s in world.sites
        if s.devices_of("radar_fall_sensor")
        and all(d.family.value == "zigbee2mqtt" for d in s.devices_of("radar_fall_sensor"))
        and len(s.residents) == 1
    )
    return pop, site


def test_detection_is_bound_to_the_radars_room() -> None:
    radars = [("hh-1-radar-bath", "bath")]
    r = random.Random(5)
    assert all(radar_detects(r, radars, room, 1.0) is None for room in ("liv", "kit", "bed"))
    assert radar_detects(random.Random(5), radars, "bath", 1.0) == "hh-1-radar-bath"
    assert radar_detects(random.Random(5), radars, "bath", 0.0) is None


def test_detection_probability_with_a_fixed_seed() -> None:
    r = random.Random(4471)
    n = 4000
    hits = sum(radar_detects(r, [("x", "bath")], "bath", 0.9) is not None for _ in range(n))
    assert 0.88 < hits / n < 0.92
    assert RADAR_FALL_DETECTION == 0.9


def test_population_share_equips_that_share_of_households() -> None:
    def radars(share: float) -> set[str]:
        pop = generate_population(PopulationParams(200, seed=7, radar_bathroom_share=share))
        return {d.binding.site for d in pop.devices if d.binding.type == "radar_fall_sensor"}

    assert radars(0.0) == set()
    half = radars(0.5)
    assert 80 <= len(half) <= 120
    assert len(radars(1.0)) == 200
    assert half <= radars(1.0)
    pop = generate_population(PopulationParams(3, seed=7, radar_bathroom_share=1.0))
    dev = next(d for d in pop.devices if d.binding.type == "radar_fall_sensor")
    assert dev.model == RADAR.model
    assert dev.binding.room == f"{dev.binding.site}-bath"
    assert dev.binding.room_kind == "bathroom"
    assert dev.binding.offline_timeout_s == RADAR.offline_timeout_s


def test_default_share_leaves_the_population_and_stream_unchanged() -> None:
    params = PopulationParams(6, 1, 1, seed=11)
    plain = generate_population(params)
    zero = generate_population(PopulationParams(6, 1, 1, seed=11, radar_bathroom_share=0.0))
    assert plain.model_dump_json() == zero.model_dump_json()
    with_radar = generate_population(PopulationParams(6, 1, 1, seed=11, radar_bathroom_share=1.0))
    # the radar's draw has its own stream: every other device is the same
    others = [d for d in with_radar.devices if d.binding.type != "radar_fall_sensor"]
    assert [d.model_dump_json() for d in others] == [d.model_dump_json() for d in plain.devices]

    def stream(pop: Provisioning) -> list[tuple[int, str, str, bool]]:
        world = build_world(pop, SimConfig(seed=11, incident_scale=3))
        return [m for m in Simulation(world, DAY0, DAY0 + 2 * DAY_MS) if "radar" not in m[1]]

    assert stream(with_radar) == stream(plain)


def _bath_time(sim: Simulation, site: SiteModel, rid: str) -> int:
    s = sim.site_for(rid, None, None)
    plans, _ = s.plans(s.ctx(0))
    seg = next(x for x in plans[rid] if x.room == "bath" and x.start > 6 * 3600)
    return seg.start + 5


def _payloads(msgs: list[tuple[int, str, str, bool]], topic: str) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    return [(m[0], json.loads(m[2])) for m in msgs if m[1] == topic]


def test_bathroom_fall_raises_fall_alarm_and_other_rooms_never_do() -> None:
    pop, site = _radar_world()
    radar = site.devices_of("radar_fall_sensor")[0]
    rid = site.residents[0].id
    only = pop.model_copy(
        update={
            "sites": [s for s in pop.sites if s.id == site.id],
            "residents": [r for r in pop.residents if r.site_id == site.id],
            "devices": [d for d in pop.devices if d.binding.site == site.id],
            "gateways": [g for g in pop.gateways if g.site_id == site.id],
        }
    )
    config = SimConfig(seed=11, incident_scale=0, imperfect=False, radar_fall_detection=1.0)
    sim = Simulation(build_world(only, config), DAY0, DAY0 + DAY_MS)
    at_s = _bath_time(sim, site, rid)
    inc = sim.inject("fall", at_ms=DAY0 + at_s * 1000, resident=rid, duration_s=1800)
    msgs = list(sim)
    assert inc.detail["room_code"] == "bath" and inc.detail["detected_by_radar"] is True
    states = _payloads(msgs, radar.topic)
    assert states and all("battery" not in p and "linkquality" in p for _, p in states)
    assert {p["fall_status"] for _, p in states} == {"normal", "fall_alarm"}
    alarm = [t for t, p in states if p["fall_status"] == "fall_alarm"]
    assert inc.start_ms < alarm[0] <= inc.start_ms + 31_000
    assert all(p["occupancy"] for t, p in states if p["fall_status"] == "fall_alarm")
    back = [t for t, p in states if t > alarm[-1]]
    assert back and inc.end_ms <= back[0] and states[-1][1]["fall_status"] == "normal"
    assert any(p["occupancy"] for _, p in states) and any(not p["occupancy"] for _, p in states)
    truth = json.loads(inc.to_json())["detail"]
    assert truth["detected_by_radar"] is True and "_radar" not in truth

    # a fall in the living room: the bathroom radar never alarms
    sim2 = Simulation(build_world(only, config), DAY0, DAY0 + DAY_MS)
    s = sim2.site_for(rid, None, None)
    plans, _ = s.plans(s.ctx(0))
    liv = next(x for x in plans[rid] if x.room == "liv" and x.end - x.start > 600)
    inc2 = sim2.inject("fall", at_ms=DAY0 + (liv.start + 60) * 1000, resident=rid, duration_s=1800)
    msgs2 = list(sim2)
    assert inc2.detail["room_code"] == "liv" and inc2.detail["detected_by_radar"] is False
    assert all(p["fall_status"] == "normal" for _, p in _payloads(msgs2, radar.topic))
