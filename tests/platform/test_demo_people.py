"""The demo's logins and incident targets come from the population, in a fixed order."""

from __future__ import annotations

from carecircle.device_sim.population.generate import PopulationParams, generate_population
from carecircle.platform.demo.people import DEMO_INCIDENTS, pick_cast


def test_cast_is_picked_from_the_population_and_incidents_rotate() -> None:
    doc = generate_population(PopulationParams(12, 1, 1, 7))
    cast = pick_cast(doc)
    assert pick_cast(doc) == cast  # same population, same cast
    assert [gw for gw, _ in cast.gateways] == [g.id for g in doc.gateways]
    places = {p.id: p for p in doc.places}
    assert places[cast.township_id].level == "township"
    roles = [login[0] for login in cast.logins()]
    assert roles == ["staff", "family", "responder"]
    responder = next(r for r in doc.responders if r.id == cast.responder_id)
    assert cast.township_id in responder.covers
    family = next(f for f in doc.family_members if f.id == cast.family_member_id)
    residents = {r.id: r for r in doc.residents}
    assert any(residents[link.resident_id].site_id.startswith("hh-") for link in family.links)

    bands = {d.binding.res for d in doc.devices if d.binding.type == "wearable"}
    kinds = [cast.incident(n)[0] for n in range(len(DEMO_INCIDENTS))]
    assert kinds == [k for k, _, _ in DEMO_INCIDENTS if cast.targets[k]]
    for n in range(3 * len(kinds)):
        kind, (flag, target) = cast.incident(n)
        if flag == "--resident":
            assert target in bands and kind in ("fall", "sos")
        else:
            assert flag == "--site" and target.startswith("hh-")
            types = {d.binding.type for d in doc.devices if d.binding.site == target}
            wanted = next(t for k, _, t in DEMO_INCIDENTS if k == kind)
            assert wanted in types
    # the second round moves on to other residents/homes
    assert cast.incident(0) != cast.incident(len(kinds))
