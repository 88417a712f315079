"""A seeded, reproducible population: places, sites, residents, devices and responders.

The result is a :class:`~carecircle.common.contract.provisioning.Provisioning`
document, the same file the platform loads.  The geography is a mountainous county
of southern Zhejiang (Lishui prefecture, Songyang county): a county seat, townships
10-20 km apart and villages a few kilometres around each township.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from carecircle.common.contract.config import DeviceBinding, DeviceFamily
from carecircle.common.contract.provisioning import (
    USUAL_WAKE_EARLIEST,
    USUAL_WAKE_KEY,
    USUAL_WAKE_LATEST,
    DeviceSpec,
    FamilyLinkSpec,
    FamilyMemberSpec,
    GatewaySpec,
    PlaceSpec,
    Provisioning,
    ResidentSpec,
    ResponderSpec,
    RoomSpec,
    SiteSpec,
)
from carecircle.device_sim.devices import catalog
from carecircle.device_sim.population import names
from carecircle.device_sim.simtime import rng

PREFECTURE = ("p-331100", "丽水市", "331100", 28.4676, 119.9229)
COUNTY = ("p-331124", "松阳县", "331124", 28.4491, 119.4817)
KM_LAT = 1 / 111.0
KM_LON = 1 / (111.0 * math.cos(math.radians(28.45)))
REFERENCE_YEAR = 2026

CONDITION_RATES = (
    ("hypertension", 0.5),
    ("diabetes", 0.2),
    ("heart_disease", 0.12),
    ("copd", 0.08),
    ("limited_mobility", 0.15),
    ("dementia", 0.08),
)


@dataclass(frozen=True)
class PopulationParams:
    households: int
    day_care: int = 0
    nursing_homes: int = 0
    seed: int = 1
    #: Share of households (0..1) equipped with a radar fall sensor in the bathroom.
    #: Drawn from its own random stream, so 0 leaves every other draw (and the file)
    #: exactly as before.
    radar_bathroom_share: float = 0.0


@dataclass
class _Builder:
    params: PopulationParams
    places: list[PlaceSpec] = field(default_factory=list)
    sites: list[SiteSpec] = field(default_factory=list)
    rooms: list[RoomSpec] = field(default_factory=list)
    residents: list[ResidentSpec] = field(default_factory=list)
    gateways: list[GatewaySpec] = field(default_factory=list)
    devices: list[DeviceSpec] = field(default_factory=list)
    responders: list[ResponderSpec] = field(default_factory=list)
    family: list[FamilyMemberSpec] = field(default_factory=list)
    macs: set[str] = field(default_factory=set)
    #: Devices of this site are Home Assistant entities instead of zigbee2mqtt devices.
    ha_site: str | None = None

    def r(self, *path: object) -> random.Random:
        return rng(self.params.seed, "population", *path)

    def resident_id(self) -> str:
        return f"r-{len(self.residents) + 1:06d}"

    def responder_id(self) -> str:
        return f"rsp-{len(self.responders) + 1:05d}"

    def mac(self, r: random.Random) -> str:
        while True:
            mac = "A4C138" + f"{r.getrandbits(24):06X}"
            if mac not in self.macs:
                self.macs.add(mac)
                return mac

    def device(
        self,
        gateway_id: str,
        dev_id: str,
        dtype: catalog.DeviceType,
        native_id: str,
        site: str,
        room: str | None,
        res: str | None = None,
    ) -> None:
        family = dtype.family
        if site == self.ha_site and dtype.type in catalog.HA_TYPES:
            family = DeviceFamily.HOMEASSISTANT
        # The site's rooms were just added: look back from the end (the gateway reads
        # room_kind to recognise bathroom presence sensors).
        room_kind = next((rm.kind for rm in reversed(self.rooms) if rm.id == room), None)
        binding = DeviceBinding(
            id=dev_id,
            family=family,
            native_id=native_id,
            site=site,
            room=room,
            room_kind=room_kind,
            res=res,
            type=dtype.type,
            power=dtype.power,
            offline_timeout_s=dtype.offline_timeout_s,
        )
        self.devices.append(DeviceSpec(gateway_id=gateway_id, binding=binding, model=dtype.model))


def _near(r: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    angle = r.uniform(0, 2 * math.pi)
    dist = km * math.sqrt(r.random())
    return (
        round(lat + dist * math.sin(angle) * KM_LAT, 6),
        round(lon + dist * math.cos(angle) * KM_LON, 6),
    )


def _conditions(r: random.Random, age: int) -> list[str]:
    out = []
    for name, rate in CONDITION_RATES:
        boost = 1.0 + max(0, age - 75) * 0.03
        if r.random() < rate * boost:
            out.append(name)
    return out


def _care_level(conditions: list[str], r: random.Random) -> Any:
    if "dementia" in conditions or "limited_mobility" in conditions:
        return "dependent" if r.random() < 0.2 else "assisted"
    return "independent"


def _places(b: _Builder) -> tuple[list[PlaceSpec], list[PlaceSpec]]:
    """Prefecture, county, townships and villages; returns (townships, villages)."""
    p = b.params
    r = b.r("places")
    pid, pname, pcode, plat, plon = PREFECTURE
    b.places.append(
        PlaceSpec(id=pid, level="prefecture", name=pname, division_code=pcode, lat=plat, lon=plon)
    )
    cid, cname, ccode, clat, clon = COUNTY
    b.places.append(
        PlaceSpec(
            id=cid,
            parent_id=pid,
            level="county",
            name=cname,
            division_code=ccode,
            lat=clat,
            lon=clon,
        )
    )
    n_villages = max(1, math.ceil(p.households / 30))
    n_townships = max(1, min(len(names.TOWNSHIPS), math.ceil(n_villages / 8)))
    townships = []
    for i in range(n_townships):
        lat, lon = (clat, clon) if i == 0 else _near(r, clat, clon, 18.0)
        name = names.TOWNSHIPS[i] + ("街道" if i == 0 else "镇")
        spec = PlaceSpec(
            id=f"p-t{i + 1:02d}",
            parent_id=cid,
            level="township",
            name=name,
            division_code=f"{ccode}{i + 1:03d}",
            lat=lat,
            lon=lon,
        )
        townships.append(spec)
    villages = []
    taken: set[str] = set()
    for j in range(n_villages):
        t = townships[j % n_townships]
        assert t.lat is not None and t.lon is not None
        lat, lon = _near(r, t.lat, t.lon, 5.0)
        villages.append(
            PlaceSpec(
                id=f"p-v{j + 1:04d}",
                parent_id=t.id,
                level="village",
                name=names.village_name(r, taken),
                division_code=f"{t.division_code}{j // n_townships + 1:03d}",
                lat=lat,
                lon=lon,
            )
        )
    b.places.extend(townships)
    b.places.extend(villages)
    return townships, villages


HOUSEHOLD_ROOMS = (
    ("bed", "bedroom", "卧室"),
    ("bath", "bathroom", "卫生间"),
    ("kit", "kitchen", "厨房"),
    ("liv", "living_room", "客厅"),
    ("ent", "entrance", "门厅"),
)


def _household(b: _Builder, index: int, village: PlaceSpec) -> None:
    r = b.r("household", index)
    site = f"hh-{index:06d}"
    gw = f"gw-{site}"
    assert village.lat is not None and village.lon is not None
    lat, lon = _near(r, village.lat, village.lon, 0.6)
    couple = r.random() < 0.42
    b.sites.append(
        SiteSpec(
            id=site,
            kind="household",
            place_id=village.id,
            name=f"{village.name}{r.randint(1, 120)}号",
            lat=lat,
            lon=lon,
            capacity=2 if couple else 1,
        )
    )
    b.gateways.append(GatewaySpec(id=gw, site_id=site))
    # One home in seven runs Home Assistant (MQTT discovery) instead of zigbee2mqtt.
    b.ha_site = site if index % 7 == 5 else None
    for code, kind, label in HOUSEHOLD_ROOMS:
        b.rooms.append(RoomSpec(id=f"{site}-{code}", site_id=site, kind=kind, name=label))
    people = []
    sexes = ["female", "male"] if couple else [("female" if r.random() < 0.62 else "male")]
    for sex in sexes:
        age = int(min(98, max(62, r.gauss(76, 7))))
        conditions = _conditions(r, age)
        rid = b.resident_id()
        spec = ResidentSpec(
            id=rid,
            site_id=site,
            room_id=f"{site}-bed",
            display_name=names.person_name(r, sex),
            birth_year=REFERENCE_YEAR - age,
            sex=sex,
            lives_alone=not couple,
            care_level=_care_level(conditions, r),
            conditions=conditions,
        )
        b.residents.append(spec)
        people.append(spec)
    name = f"{site}_"
    b.device(gw, f"{site}-pir-bed", catalog.MOTION, name + "bedroom_motion", site, f"{site}-bed")
    b.device(gw, f"{site}-pir-bath", catalog.MOTION, name + "bathroom_motion", site, f"{site}-bath")
    b.device(gw, f"{site}-pir-kit", catalog.MOTION, name + "kitchen_motion", site, f"{site}-kit")
    b.device(gw, f"{site}-pir-liv", catalog.MOTION, name + "living_motion", site, f"{site}-liv")
    b.device(gw, f"{site}-door-ent", catalog.DOOR, name + "front_door", site, f"{site}-ent")
    b.device(gw, f"{site}-th-liv", catalog.CLIMATE, name + "living_climate", site, f"{site}-liv")
    b.device(gw, f"{site}-th-bed", catalog.CLIMATE, name + "bedroom_climate", site, f"{site}-bed")
    b.device(gw, f"{site}-smoke-kit", catalog.SMOKE, name + "kitchen_smoke", site, f"{site}-kit")
    if r.random() < 0.7:  # bottled LPG or piped gas
        b.device(gw, f"{site}-gas-kit", catalog.GAS, name + "kitchen_gas", site, f"{site}-kit")
    if r.random() < 0.6:  # charcoal or coal heating in winter
        b.device(gw, f"{site}-co-liv", catalog.CO, name + "living_co", site, f"{site}-liv")
    b.device(gw, f"{site}-leak-bath", catalog.LEAK, name + "bathroom_leak", site, f"{site}-bath")
    sos_owner = people[0].id if len(people) == 1 else None
    b.device(
        gw, f"{site}-sos-bed", catalog.SOS_TUYA, name + "sos_button", site, f"{site}-bed", sos_owner
    )
    for person in people:
        if r.random() < 0.9:
            b.device(gw, f"{person.id}-band", catalog.BAND, b.mac(r), site, None, person.id)
    share = b.params.radar_bathroom_share
    if share > 0 and b.r("radar", index).random() < share:
        b.device(
            gw, f"{site}-radar-bath", catalog.RADAR, name + "bathroom_radar", site, f"{site}-bath"
        )


FACILITY_ROOMS = (
    ("ent", "entrance", "大门"),
    ("cor", "corridor", "走廊"),
    ("din", "dining", "餐厅"),
    ("act", "activity", "活动室"),
    ("kit", "kitchen", "厨房"),
    ("wc", "toilet", "公共卫生间"),
)


def _facility_common(b: _Builder, site: str, gw: str, r: random.Random) -> None:
    for code, kind, label in FACILITY_ROOMS:
        b.rooms.append(RoomSpec(id=f"{site}-{code}", site_id=site, kind=kind, name=label))
    name = f"{site}_"
    b.device(gw, f"{site}-door-ent", catalog.DOOR, name + "main_door", site, f"{site}-ent")
    for code in ("cor", "din", "act", "wc"):
        b.device(
            gw, f"{site}-pir-{code}", catalog.MOTION, f"{name}{code}_motion", site, f"{site}-{code}"
        )
    b.device(gw, f"{site}-smoke-kit", catalog.SMOKE, name + "kitchen_smoke", site, f"{site}-kit")
    b.device(gw, f"{site}-gas-kit", catalog.GAS, name + "kitchen_gas", site, f"{site}-kit")
    b.device(gw, f"{site}-leak-wc", catalog.LEAK, name + "toilet_leak", site, f"{site}-wc")
    b.device(gw, f"{site}-th-act", catalog.CLIMATE, name + "activity_climate", site, f"{site}-act")


def _nursing_home(b: _Builder, index: int, township: PlaceSpec) -> None:
    r = b.r("nursing_home", index)
    site = f"nh-{index:03d}"
    gw = f"gw-{site}"
    assert township.lat is not None and township.lon is not None
    lat, lon = _near(r, township.lat, township.lon, 1.5)
    n_rooms = r.randint(12, 30)
    b.sites.append(
        SiteSpec(
            id=site,
            kind="nursing_home",
            place_id=township.id,
            name=f"{township.name}敬老院",
            lat=lat,
            lon=lon,
            capacity=n_rooms * 2,
        )
    )
    b.gateways.append(GatewaySpec(id=gw, site_id=site))
    _facility_common(b, site, gw, r)
    for room_no in range(1, n_rooms + 1):
        room = f"{site}-rm{room_no:03d}"
        b.rooms.append(RoomSpec(id=room, site_id=site, kind="bedroom", name=f"{room_no:03d}房"))
        b.device(gw, f"{room}-pir", catalog.MOTION, f"{site}_room{room_no:03d}_motion", site, room)
        if room_no % 4 == 1:
            b.device(
                gw, f"{room}-th", catalog.CLIMATE, f"{site}_room{room_no:03d}_climate", site, room
            )
        occupants = 2 if r.random() < 0.85 else 1
        for bed in "ab"[:occupants]:
            sex = "female" if r.random() < 0.55 else "male"
            age = int(min(100, max(68, r.gauss(84, 6))))
            conditions = _conditions(r, age + 6)
            rid = b.resident_id()
            level = "dependent" if r.random() < 0.35 else "assisted"
            b.residents.append(
                ResidentSpec(
                    id=rid,
                    site_id=site,
                    room_id=room,
                    display_name=names.person_name(r, sex),
                    birth_year=REFERENCE_YEAR - age,
                    sex=sex,
                    lives_alone=False,
                    care_level=level,
                    conditions=conditions,
                    care_profile={"bed": f"{room_no:03d}{bed}"},
                )
            )
            bed_native = f"BS{index:02d}{room_no:03d}{bed.upper()}"
            b.device(gw, f"{room}{bed}-bed", catalog.BED, bed_native, site, room, rid)
            b.device(
                gw,
                f"{room}{bed}-call",
                catalog.SOS_HEIMAN,
                f"{site}_call_{room_no:03d}{bed}",
                site,
                room,
                rid,
            )
            if r.random() < 0.5:
                b.device(gw, f"{rid}-band", catalog.BAND, b.mac(r), site, None, rid)
    _facility_staff(b, site, township, r, max(4, n_rooms // 3))


def _day_care(b: _Builder, index: int, township: PlaceSpec) -> str:
    r = b.r("day_care", index)
    site = f"dc-{index:03d}"
    gw = f"gw-{site}"
    assert township.lat is not None and township.lon is not None
    lat, lon = _near(r, township.lat, township.lon, 1.0)
    b.sites.append(
        SiteSpec(
            id=site,
            kind="day_care",
            place_id=township.id,
            name=f"{township.name}居家养老服务中心",
            lat=lat,
            lon=lon,
            capacity=30,
        )
    )
    b.gateways.append(GatewaySpec(id=gw, site_id=site))
    _facility_common(b, site, gw, r)
    _facility_staff(b, site, township, r, 3)
    return site


def _facility_staff(
    b: _Builder, site: str, township: PlaceSpec, r: random.Random, count: int
) -> None:
    assert township.lat is not None and township.lon is not None
    for i in range(count):
        lat, lon = _near(r, township.lat, township.lon, 3.0)
        shift = [
            {"days": [0, 1, 2, 3, 4, 5, 6], "start": "07:00", "end": "15:00"},
            {"days": [0, 1, 2, 3, 4, 5, 6], "start": "15:00", "end": "23:00"},
            {"days": [0, 1, 2, 3, 4, 5, 6], "start": "23:00", "end": "07:00"},
        ][i % 3]
        b.responders.append(
            ResponderSpec(
                id=b.responder_id(),
                display_name=names.younger_name(r),
                kind="facility_staff",
                place_id=township.id,
                site_id=site,
                lat=lat,
                lon=lon,
                travel_mode="ebike",
                skills=["first_aid", "nursing", "can_lift"],
                covers=[township.id],
                shifts=[shift],
            )
        )


def _community_responders(
    b: _Builder, townships: list[PlaceSpec], villages: list[PlaceSpec]
) -> None:
    for t in townships:
        r = b.r("township-staff", t.id)
        assert t.lat is not None and t.lon is not None
        covered = [t.id, *[v.id for v in villages if v.parent_id == t.id]]
        for _ in range(3):
            lat, lon = _near(r, t.lat, t.lon, 2.0)
            b.responders.append(
                ResponderSpec(
                    id=b.responder_id(),
                    display_name=names.younger_name(r),
                    kind="care_worker",
                    place_id=t.id,
                    lat=lat,
                    lon=lon,
                    travel_mode="ebike",
                    skills=["first_aid", "nursing", "can_lift"],
                    covers=covered,
                    shifts=[{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "17:30"}],
                )
            )
    for k, v in enumerate(villages):
        r = b.r("village-responders", v.id)
        assert v.lat is not None and v.lon is not None
        for i in range(r.randint(2, 4)):
            lat, lon = _near(r, v.lat, v.lon, 0.5)
            days = sorted(r.sample(range(7), r.randint(3, 6)))
            start, end = r.choice([("07:00", "12:00"), ("13:00", "20:00"), ("08:00", "20:00")])
            skills = ["first_aid"] if r.random() < 0.5 else []
            if i == 0 and r.random() < 0.5:
                skills.append("can_lift")
            b.responders.append(
                ResponderSpec(
                    id=b.responder_id(),
                    display_name=names.person_name(r, r.choice(["female", "male"])),
                    kind="volunteer",
                    place_id=v.id,
                    lat=lat,
                    lon=lon,
                    travel_mode="walk",
                    skills=skills,
                    covers=[v.id],
                    shifts=[{"days": days, "start": start, "end": end}],
                )
            )
        lat, lon = _near(r, v.lat, v.lon, 0.3)
        b.responders.append(  # the village cadre (村干部) on call for the village
            ResponderSpec(
                id=b.responder_id(),
                display_name=names.younger_name(r),
                kind="volunteer",
                place_id=v.id,
                lat=lat,
                lon=lon,
                travel_mode="ebike",
                skills=["village_cadre", "first_aid"],
                covers=[v.id],
                shifts=[{"days": [0, 1, 2, 3, 4, 5, 6], "start": "07:00", "end": "21:00"}],
            )
        )
        if k % 3 == 0:  # a village doctor for every three villages
            group = [x.id for x in villages[k : k + 3]]
            b.responders.append(
                ResponderSpec(
                    id=b.responder_id(),
                    display_name=names.younger_name(r),
                    kind="doctor",
                    place_id=v.id,
                    lat=lat,
                    lon=lon,
                    travel_mode="ebike",
                    skills=["first_aid", "nursing", "medical"],
                    covers=group,
                    shifts=[{"days": [0, 1, 2, 3, 4, 5], "start": "08:00", "end": "17:00"}],
                )
            )


def _families(b: _Builder, villages: dict[str, PlaceSpec], sites: dict[str, SiteSpec]) -> None:
    for res in b.residents:
        r = b.r("family", res.id)
        for _ in range(r.randint(1, 2)):
            fid = f"fam-{len(b.family) + 1:06d}"
            relation = r.choice(["son", "daughter", "son", "daughter", "niece", "grandson"])
            b.family.append(
                FamilyMemberSpec(
                    id=fid,
                    display_name=names.younger_name(r),
                    links=[
                        FamilyLinkSpec(
                            resident_id=res.id,
                            relationship=relation,
                            consent={
                                "alerts": True,
                                "daily_summary": r.random() < 0.8,
                                "vitals": r.random() < 0.4,
                                "location": r.random() < 0.2,
                            },
                        )
                    ],
                )
            )
            site = sites[res.site_id]
            if site.kind == "household" and r.random() < 0.25:  # lives nearby and can come
                village = villages[site.place_id]
                assert village.lat is not None and village.lon is not None
                lat, lon = _near(r, village.lat, village.lon, 4.0)
                b.responders.append(
                    ResponderSpec(
                        id=b.responder_id(),
                        display_name=b.family[-1].display_name,
                        kind="family",
                        place_id=village.id,
                        lat=lat,
                        lon=lon,
                        travel_mode="car",
                        skills=[],
                        covers=[village.id],
                        shifts=[
                            {"days": [0, 1, 2, 3, 4], "start": "18:00", "end": "22:00"},
                            {"days": [5, 6], "start": "08:00", "end": "22:00"},
                        ],
                    )
                )


def generate_population(params: PopulationParams) -> Provisioning:
    """Build the whole population for ``params``; the same params give the same document."""
    if params.households < 0 or params.day_care < 0 or params.nursing_homes < 0:
        raise ValueError("counts of households, day-care centres and nursing homes must be >= 0")
    if not 0.0 <= params.radar_bathroom_share <= 1.0:
        raise ValueError("radar_bathroom_share must be within 0..1")
    b = _Builder(params)
    townships, villages = _places(b)
    for i in range(params.households):
        _household(b, i + 1, villages[i % len(villages)])
    day_cares = [_day_care(b, i + 1, townships[i % len(townships)]) for i in range(params.day_care)]
    for i in range(params.nursing_homes):
        _nursing_home(b, i + 1, townships[i % len(townships)])
    if day_cares:
        _assign_day_care(b, day_cares)
    _intake(b)
    _community_responders(b, townships, villages)
    _families(
        b,
        {p.id: p for p in b.places},
        {s.id: s for s in b.sites},
    )
    return Provisioning(
        places=b.places,
        sites=b.sites,
        rooms=b.rooms,
        residents=b.residents,
        gateways=b.gateways,
        devices=b.devices,
        responders=b.responders,
        family_members=b.family,
    )


#: Share of household residents whose intake assessment records no usual wake-up time.
INTAKE_UNKNOWN = 0.15
#: How far what a person says about their usual getting-up time is off (sd, minutes),
#: before it is rounded to the half hour ("about half past six").
INTAKE_ERROR_SD_MIN = 15.0


def stated_wake_min(seed: int, res: ResidentSpec, true_mean_min: float) -> float | None:
    """What the resident (or the family) tells the care worker at intake about their
    usual getting-up time, minutes after midnight: the habit with a person's error,
    rounded to the half hour; ``None`` for those who record none."""
    r = rng(seed, "intake", res.id)
    if r.random() < INTAKE_UNKNOWN:
        return None
    said = true_mean_min + r.gauss(0, INTAKE_ERROR_SD_MIN)
    lo = USUAL_WAKE_EARLIEST.hour * 60 + USUAL_WAKE_EARLIEST.minute
    hi = USUAL_WAKE_LATEST.hour * 60 + USUAL_WAKE_LATEST.minute
    return float(min(hi, max(lo, 30 * round(said / 30))))


def _intake(b: _Builder) -> None:
    """Each household resident's intake: the stated usual wake-up time in the care
    profile (``usual_wake_time``), from the persona of the same seed — so it describes
    the stream of ``sim generate --seed`` with the population's seed.  Nursing-home
    residents follow the home's day (no stated time)."""
    from carecircle.device_sim.routines.persona import persona_for  # imports this module

    updated = []
    for res in b.residents:
        said = (
            stated_wake_min(b.params.seed, res, persona_for(b.params.seed, res).wake_mean_min)
            if res.site_id.startswith("hh-")
            else None
        )
        if said is not None:
            hhmm = f"{int(said) // 60:02d}:{int(said) % 60:02d}"
            res = res.model_copy(
                update={"care_profile": {**res.care_profile, USUAL_WAKE_KEY: hhmm}}
            )
        updated.append(res)
    b.residents[:] = updated


def _assign_day_care(b: _Builder, day_cares: list[str]) -> None:
    """Send up to 30 household residents of a day-care centre's township to it."""
    site_place = {s.id: s.place_id for s in b.sites}
    village_township = {p.id: p.parent_id for p in b.places if p.level == "village"}
    centre_township = {dc: site_place[dc] for dc in day_cares}
    counts = dict.fromkeys(day_cares, 0)
    updated = []
    for res in b.residents:
        new = res
        if res.site_id.startswith("hh-"):
            township = village_township.get(site_place[res.site_id])
            options = [dc for dc in day_cares if centre_township[dc] == township]
            r = b.r("day_care_choice", res.id)
            if options and r.random() < 0.3:
                dc = options[r.randrange(len(options))]
                if counts[dc] < 30:
                    counts[dc] += 1
                    days = sorted(r.sample(range(5), r.randint(2, 5)))
                    new = res.model_copy(
                        update={
                            "day_care_site_id": dc,
                            "care_profile": {**res.care_profile, "day_care_days": days},
                        }
                    )
        updated.append(new)
    b.residents[:] = updated
