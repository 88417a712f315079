"""Who the demo shows: its three logins and the targets of its injected incidents.

Everything is picked from the simulator's population (``population.json``), in a
fixed order, so the same seed gives the same logins and the same incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from carecircle.common.contract.provisioning import Provisioning
from carecircle.common.errors import ConfigError

#: Incidents the demo injects in turn: (kind, target, device type the target must have).
DEMO_INCIDENTS: tuple[tuple[str, str, str], ...] = (
    ("fall", "resident", "wearable"),
    ("smoke", "site", "smoke_detector"),
    ("sos", "resident", "wearable"),
    ("water_leak", "site", "water_leak_sensor"),
    ("gas", "site", "gas_detector"),
)


@dataclass(frozen=True)
class DemoCast:
    """The demo's users and incident targets, taken from one population."""

    #: (gateway id, site id) of every gateway, in population order.
    gateways: tuple[tuple[str, str], ...]
    township_id: str
    family_member_id: str | None
    responder_id: str | None
    #: Per incident kind: the residents (or sites) it may happen to, in order.
    targets: dict[str, tuple[str, ...]]

    def logins(self) -> list[tuple[str, str, str, str, str]]:
        """(role, username, scope flag, scope id, description) of each demo login."""
        out = [
            (
                "staff",
                "staff-demo",
                "--place",
                self.township_id,
                f"dashboard; township {self.township_id}",
            )
        ]
        if self.family_member_id is not None:
            out.append(
                (
                    "family",
                    "family-demo",
                    "--family-member",
                    self.family_member_id,
                    f"API; family member {self.family_member_id}",
                )
            )
        if self.responder_id is not None:
            out.append(
                (
                    "responder",
                    "responder-demo",
                    "--responder",
                    self.responder_id,
                    f"API; responder {self.responder_id}",
                )
            )
        return out

    def incident(self, n: int) -> tuple[str, tuple[str, ...]]:
        """The ``n``-th injected incident: its kind and ``sim scenario`` target options."""
        usable = [(k, t) for k, t, _ in DEMO_INCIDENTS if self.targets.get(k)]
        if not usable:
            raise ConfigError("the demo population has nowhere to inject an incident")
        kind, target = usable[n % len(usable)]
        choices = self.targets[kind]
        who = choices[(n // len(usable)) % len(choices)]
        return kind, (f"--{target}", who)


def cast_from_population(path: Path) -> DemoCast:
    try:
        doc = Provisioning.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as err:
        raise ConfigError(f"cannot read the demo population {path}: {err}") from err
    return pick_cast(doc)


def pick_cast(doc: Provisioning) -> DemoCast:
    places = {p.id: p for p in doc.places}
    townships = [p.id for p in doc.places if p.level == "township"]
    if not townships:
        raise ConfigError("the demo population has no township")
    homes = [s for s in doc.sites if s.kind == "household"]

    def township_of(place_id: str | None) -> str | None:
        while place_id is not None:
            place = places.get(place_id)
            if place is None:
                return None
            if place.level == "township":
                return place.id
            place_id = place.parent_id
        return None

    # The township with the most households is the one staff watch.
    counts = {t: 0 for t in townships}
    for site in homes:
        t = township_of(site.place_id)
        if t is not None:
            counts[t] += 1
    township = max(townships, key=lambda t: (counts[t], -townships.index(t)))
    in_township = {s.id for s in doc.sites if township_of(s.place_id) == township}

    types: dict[str, set[str]] = {}  # resident or site -> device types
    for dev in doc.devices:
        b = dev.binding
        types.setdefault(b.site, set()).add(b.type)
        if b.res is not None:
            types.setdefault(b.res, set()).add(b.type)
    home_ids = [s.id for s in homes if s.id in in_township]
    residents = [r.id for r in doc.residents if r.site_id in home_ids]
    targets: dict[str, tuple[str, ...]] = {}
    for kind, target, device_type in DEMO_INCIDENTS:
        pool = residents if target == "resident" else home_ids
        targets[kind] = tuple(x for x in pool if device_type in types.get(x, set()))

    family = next(
        (
            f.id
            for f in doc.family_members
            if any(link.resident_id in residents for link in f.links)
        ),
        None,
    )
    responder = next(
        (r.id for r in doc.responders if r.kind == "care_worker" and township in r.covers),
        next((r.id for r in doc.responders if township in r.covers), None),
    )
    return DemoCast(
        gateways=tuple((g.id, g.site_id) for g in doc.gateways),
        township_id=township,
        family_member_id=family,
        responder_id=responder,
        targets=targets,
    )
