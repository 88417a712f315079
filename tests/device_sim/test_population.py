"""The population generator: reproducible, opaque ids, consistent references."""

from __future__ import annotations

import math
import re

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.population.generate import COUNTY, PopulationParams, generate_population


def test_same_seed_same_population_and_different_seed_different() -> None:
    a = generate_population(PopulationParams(40, 2, 1, seed=5)).model_dump_json()
    b = generate_population(PopulationParams(40, 2, 1, seed=5)).model_dump_json()
    c = generate_population(PopulationParams(40, 2, 1, seed=6)).model_dump_json()
    assert a == b
    assert a != c


def test_population_is_a_consistent_provisioning_document(small_population: Provisioning) -> None:
    pop = Provisioning.model_validate_json(small_population.model_dump_json())
    levels = {p.level for p in pop.places}
    assert levels == {"prefecture", "county", "township", "village"}
    place_ids = {p.id for p in pop.places}
    assert all(p.parent_id is None or p.parent_id in place_ids for p in pop.places)
    kinds = {s.kind for s in pop.sites}
    assert kinds == {"household", "day_care", "nursing_home"}
    site_ids = {s.id for s in pop.sites}
    room_ids = {r.id for r in pop.rooms}
    gateways = {g.id: g.site_id for g in pop.gateways}
    assert set(gateways.values()) == site_ids, "one gateway per site"
    for res in pop.residents:
        assert re.fullmatch(r"r-\d{6}", res.id), "resident ids are opaque"
        assert res.display_name not in res.id
        assert res.site_id in site_ids and (res.room_id is None or res.room_id in room_ids)
    resident_ids = {r.id for r in pop.residents}
    natives: set[tuple[str, str]] = set()
    for dev in pop.devices:
        b = dev.binding
        assert gateways[dev.gateway_id] == b.site
        assert b.room is None or b.room in room_ids
        assert b.res is None or b.res in resident_ids
        assert (b.site, b.native_id) not in natives
        natives.add((b.site, b.native_id))
        if b.family.value == "wearable":
            assert re.fullmatch(r"[0-9A-F]{12}", b.native_id)
        if b.type == "motion_sensor":
            assert b.offline_timeout_s <= 7200
    # Lat/lon within ~40 km of the county seat.
    _, _, _, lat0, lon0 = COUNTY
    for s in pop.sites:
        assert math.hypot(s.lat - lat0, (s.lon - lon0) * 0.88) < 0.4
    kinds_r = {r.kind for r in pop.responders}
    assert {"volunteer", "care_worker", "facility_staff", "doctor"} <= kinds_r
    assert all(r.shifts and r.covers for r in pop.responders)
    linked = {link.resident_id for f in pop.family_members for link in f.links}
    assert linked == resident_ids, "every resident has family with consent settings"
    assert any(r.day_care_site_id for r in pop.residents), "someone attends day care"
    alone = sum(r.lives_alone for r in pop.residents if r.site_id.startswith("hh-"))
    assert alone >= 1


def test_large_population_mix() -> None:
    pop = generate_population(PopulationParams(300, 3, 2, seed=2))
    homes = [s for s in pop.sites if s.kind == "household"]
    assert len(homes) == 300
    alone = sum(1 for s in homes if s.capacity == 1)
    assert 0.45 < alone / 300 < 0.7, "many elders live alone"
    conds = [c for r in pop.residents for c in r.conditions]
    for c in ("dementia", "hypertension", "diabetes", "limited_mobility"):
        assert c in conds
    assert len(pop.devices) > 3000
    families = {d.binding.family.value for d in pop.devices}
    assert families == {"zigbee2mqtt", "homeassistant", "wearable", "bed_sensor"}


def test_every_device_in_a_room_carries_that_room_kind() -> None:
    from carecircle.device_sim.population.generate import PopulationParams, generate_population

    doc = generate_population(PopulationParams(4, 1, 1, 3))
    kinds = {room.id: room.kind for room in doc.rooms}
    placed = [d.binding for d in doc.devices if d.binding.room is not None]
    assert placed
    assert all(b.room_kind == kinds[b.room] for b in placed if b.room is not None)
    assert all(b.room_kind is None for b in (d.binding for d in doc.devices) if b.room is None)
    assert any(b.room_kind == "bathroom" for b in placed)


def test_intake_states_a_usual_wake_up_time_as_a_person_would() -> None:
    """What a household resident says at intake: the persona's habit with a person's
    error, rounded to the half hour; some say nothing; nursing-home residents none."""
    from statistics import mean

    from carecircle.common.contract.provisioning import parse_usual_wake
    from carecircle.device_sim.population.generate import INTAKE_UNKNOWN
    from carecircle.device_sim.routines.persona import persona_for

    pop = generate_population(PopulationParams(120, 1, 1, seed=9001))
    homes = [r for r in pop.residents if r.site_id.startswith("hh-")]
    stated = [r for r in homes if "usual_wake_time" in r.care_profile]
    assert 0.05 < 1 - len(stated) / len(homes) < 3 * INTAKE_UNKNOWN  # some record none
    assert not any(
        "usual_wake_time" in r.care_profile for r in pop.residents if r not in homes
    )  # the nursing home's residents follow its day
    errors = []
    for r in stated:
        said = parse_usual_wake(r.care_profile["usual_wake_time"])
        assert said.minute in (0, 30)  # "about half past six"
        true = persona_for(9001, r).wake_mean_min
        errors.append(said.hour * 60 + said.minute - true)
    assert all(abs(e) < 75 for e in errors)
    assert abs(mean(errors)) < 8  # no bias, but not the true value either
    assert sum(abs(e) > 10 for e in errors) > len(errors) / 3
    # the same seed says the same
    again = generate_population(PopulationParams(120, 1, 1, seed=9001))
    assert again.model_dump_json() == pop.model_dump_json()
