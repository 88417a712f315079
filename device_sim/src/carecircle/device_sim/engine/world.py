"""The simulated world built from a provisioning document: sites, devices and personas."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from carecircle.common.contract.config import DeviceFamily, Power
from carecircle.common.contract.provisioning import Provisioning, ResidentSpec, SiteSpec
from carecircle.device_sim.devices.catalog import HA_BATTERY, HA_ENTITIES, RADAR_FALL_DETECTION
from carecircle.device_sim.devices.formats import HaEntity, TopicBases, ha_entities
from carecircle.device_sim.incidents.model import DEFAULT_RATES
from carecircle.device_sim.routines.persona import Persona, persona_for
from carecircle.device_sim.simtime import DAY_S, local_date, rng


@dataclass
class SimConfig:
    seed: int = 1
    bases: TopicBases = field(default_factory=TopicBases)
    #: Multiplies every incident rate (0 = no random incidents; scenarios still work).
    incident_scale: float = 1.0
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    #: Missed PIR triggers, duplicates, delays, link drops.  Off only for unit tests.
    imperfect: bool = True
    #: Probability that a radar fall sensor detects a fall in its own room (an
    #: assumption, docs/simulator.md "Radar fall sensor").
    radar_fall_detection: float = RADAR_FALL_DETECTION


@dataclass
class SimDevice:
    id: str
    native_id: str
    type: str
    model: str
    family: DeviceFamily
    power: Power
    site_id: str
    room_code: str | None
    resident_id: str | None
    topic: str
    avail_topic: str
    battery0: float
    drain_per_day: float
    linkquality: int
    miss_prob: float
    skew_ms: int
    drift_ppm: float
    phase_s: float
    #: Home Assistant entities (devices of the Home Assistant family only).
    ha: list[HaEntity] = field(default_factory=list)

    @property
    def battery_powered(self) -> bool:
        return self.power is Power.BATTERY


@dataclass
class SiteModel:
    spec: SiteSpec
    index: int
    gateway_id: str
    bases: TopicBases
    z2m_v2: bool
    z2m_last_seen: bool
    residents: list[ResidentSpec]
    personas: dict[str, Persona]
    devices: list[SimDevice]
    #: Household residents who attend this day-care centre (day-care sites only).
    attendees: list[Persona] = field(default_factory=list)
    #: Room code of each facility resident's room.
    resident_room: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    def devices_of(self, dtype: str) -> list[SimDevice]:
        return [d for d in self.devices if d.type == dtype]

    def band_of(self, resident_id: str) -> SimDevice | None:
        for d in self.devices:
            if d.type == "wearable" and d.resident_id == resident_id:
                return d
        return None


@dataclass
class World:
    config: SimConfig
    sites: list[SiteModel]
    site_by_id: dict[str, SiteModel]
    site_of_resident: dict[str, str]
    site_of_device: dict[str, str]
    native_to_device: dict[str, SimDevice]

    @property
    def device_count(self) -> int:
        return sum(len(s.devices) for s in self.sites)


def _room_code(site_id: str, room_id: str | None) -> str | None:
    if room_id is None:
        return None
    prefix = site_id + "-"
    return room_id[len(prefix) :] if room_id.startswith(prefix) else room_id


def build_world(pop: Provisioning, config: SimConfig) -> World:
    """Index the provisioning document into per-site simulation models."""
    seed = config.seed
    gateway_of_site = {g.site_id: g.id for g in pop.gateways}
    residents_by_site: dict[str, list[ResidentSpec]] = {}
    for res in pop.residents:
        residents_by_site.setdefault(res.site_id, []).append(res)
    devices_by_site: dict[str, list[SimDevice]] = {}
    sites: list[SiteModel] = []
    site_by_id: dict[str, SiteModel] = {}
    for index, spec in enumerate(pop.sites):
        gw = gateway_of_site.get(spec.id)
        if gw is None:
            continue
        r = rng(seed, "site-config", spec.id)
        residents = residents_by_site.get(spec.id, [])
        model = SiteModel(
            spec=spec,
            index=index,
            gateway_id=gw,
            bases=config.bases.for_site(spec.id, gw),
            z2m_v2=r.random() < 0.5,
            z2m_last_seen=r.random() < 0.4,
            residents=residents,
            personas={res.id: persona_for(seed, res) for res in residents},
            devices=[],
            resident_room={
                res.id: _room_code(spec.id, res.room_id) or "" for res in residents if res.room_id
            },
        )
        sites.append(model)
        site_by_id[spec.id] = model
        devices_by_site[spec.id] = model.devices
    native: dict[str, SimDevice] = {}
    site_of_device: dict[str, str] = {}
    for dev in pop.devices:
        b = dev.binding
        site = site_by_id.get(b.site)
        if site is None:
            continue
        r = rng(seed, "device", b.id)
        bases = site.bases
        if b.family is DeviceFamily.WEARABLE:
            topic = f"{bases.careband}/{b.native_id}/telemetry"
            avail = f"{bases.careband}/{b.native_id}/availability"
        elif b.family is DeviceFamily.BED_SENSOR:
            topic = f"{bases.bedsensor}/{b.native_id}/state"
            avail = f"{bases.bedsensor}/{b.native_id}/availability"
        elif b.family is DeviceFamily.HOMEASSISTANT:
            topic = f"{bases.homeassistant}/{b.site}/{b.native_id}"
            avail = f"{topic}/availability"
        else:
            topic = f"{bases.zigbee2mqtt}/{b.native_id}"
            avail = f"{topic}/availability"
        sim_dev = SimDevice(
            id=b.id,
            native_id=b.native_id,
            type=b.type,
            model=dev.model or b.type,
            family=b.family,
            power=b.power,
            site_id=b.site,
            room_code=_room_code(b.site, b.room),
            resident_id=b.res,
            topic=topic,
            avail_topic=avail,
            battery0=r.uniform(35, 100),
            drain_per_day=r.uniform(0.02, 0.12),
            linkquality=r.randint(25, 220),
            miss_prob=r.uniform(0.02, 0.1),
            skew_ms=int(r.gauss(0, 40_000)),
            drift_ppm=r.uniform(-25, 25),
            phase_s=r.uniform(0, 3000),
        )
        if b.family is DeviceFamily.HOMEASSISTANT:
            specs = HA_ENTITIES.get(b.type, ())
            if b.power is Power.BATTERY:
                specs = (*specs, HA_BATTERY)
            sim_dev.ha = ha_entities(bases.homeassistant, b.site, b.native_id, specs)
        site.devices.append(sim_dev)
        native[f"{b.site}|{b.native_id}"] = sim_dev
        site_of_device[b.id] = b.site
    for res in pop.residents:
        if res.day_care_site_id and res.day_care_site_id in site_by_id:
            home = site_by_id.get(res.site_id)
            if home is not None:
                site_by_id[res.day_care_site_id].attendees.append(home.personas[res.id])
    return World(
        config=config,
        sites=sites,
        site_by_id=site_by_id,
        site_of_resident={res.id: res.site_id for res in pop.residents},
        site_of_device=site_of_device,
        native_to_device=native,
    )


def outdoor(seed: int, day_start_ms: int) -> tuple[float, float]:
    """Daily mean and half-range of outdoor temperature (°C) in the county that day."""
    doy = local_date(day_start_ms).timetuple().tm_yday
    r = rng(seed, "weather", day_start_ms // (DAY_S * 1000))
    mean = 17.5 - 11.8 * math.cos(2 * math.pi * (doy - 18) / 365) + r.gauss(0, 2.2)
    return mean, r.uniform(3.0, 5.5)


def outdoor_at(mean: float, amp: float, t_s: float) -> float:
    """Outdoor temperature at ``t_s`` seconds after local midnight (min ~04:00, max ~15:00)."""
    return mean + amp * math.sin(2 * math.pi * (t_s / 3600 - 9.5) / 24)
