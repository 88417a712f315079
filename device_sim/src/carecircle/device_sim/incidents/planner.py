"""Where and when incidents happen: drawn at the configured rates, or injected on demand.

Each kind has a model (see docs/simulator.md): when in the day it can happen, what
state the resident must be in (at home, asleep, awake), how long it lasts and which
device signals it causes.  The same builder serves the random planner and
``carecircle sim scenario`` so an injected incident looks like a drawn one.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from carecircle.device_sim.devices.catalog import RADAR
from carecircle.device_sim.incidents.model import (
    BENIGN_KINDS,
    DEVICE_KINDS,
    RESIDENT_KINDS,
    SITE_KINDS,
    Incident,
)
from carecircle.device_sim.routines.plan import AWAY, Seg, at
from carecircle.device_sim.simtime import DAY_S, HOUR_S, rng

if TYPE_CHECKING:
    from carecircle.device_sim.engine.sites import DayCtx, Facts, SiteSim

ZIGBEE_SITE_DEVICE = {
    "smoke": "smoke_detector",
    "gas": "gas_detector",
    "carbon_monoxide": "co_detector",
    "water_leak": "water_leak_sensor",
}


RADAR_TYPE = RADAR.type


def radar_detects(
    r: random.Random, radars: list[tuple[str, str | None]], fall_room: str, p: float
) -> str | None:
    """The id of the radar (id, room code) that raises ``fall_alarm`` for a fall in
    ``fall_room``, or ``None``: only a radar in the fall's own room can see it, and it
    does with probability ``p``."""
    for dev_id, room in radars:
        if room == fall_room and r.random() < p:
            return dev_id
    return None


class Unplaceable(ValueError):
    """The incident cannot happen here now (resident away, no such device, …)."""


def _hhmm(seconds: float) -> str:
    s = int(seconds) % DAY_S
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def _lognormal_s(r: random.Random, median_s: float, sigma: float, lo: float, hi: float) -> int:
    return int(min(hi, max(lo, r.lognormvariate(math.log(median_s), sigma))))


def _pick_time(
    r: random.Random, segs: list[Seg], lo: float, hi: float, acts: tuple[str, ...] | None = None
) -> tuple[int, Seg] | None:
    for _ in range(12):
        t = int(r.uniform(lo, hi))
        seg = at(segs, t)
        if seg is None or seg.room in AWAY:
            continue
        if acts is not None and seg.act not in acts:
            continue
        return t, seg
    return None


class Builder:
    """Makes one incident of a kind on a site day."""

    def __init__(
        self,
        sim: SiteSim,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        facts: dict[str, Facts],
        r: random.Random,
    ) -> None:
        self.sim, self.c, self.plans, self.facts, self.r = sim, c, plans, facts, r
        self.household = sim.kind == "household"
        #: Force how an SOS is raised: "band" or "button" (scenarios); None = at random.
        self.via: str | None = None

    def free(self, rid: str | None, lo_ms: int, hi_ms: int) -> bool:
        for inc in self.sim.incidents.values():
            if inc.kind == "away_from_home":
                continue
            if rid is not None and inc.resident_id == rid and inc.overlaps(lo_ms, hi_ms):
                return False
        return True

    def ms(self, t_s: float) -> int:
        return self.c.day0 + int(t_s * 1000)

    def build(
        self,
        kind: str,
        iid: str,
        *,
        resident: str | None = None,
        at_s: int | None = None,
        duration_s: int | None = None,
        device_id: str | None = None,
        via: str | None = None,
    ) -> Incident:
        self.via = via
        if kind in RESIDENT_KINDS or kind in ("nap_in_chair", "family_visit", "wearable_removed"):
            if resident is None or resident not in self.plans:
                raise Unplaceable(f"{kind} needs a resident of site {self.sim.m.id}")
            return self._resident(kind, iid, resident, at_s, duration_s)
        if kind in SITE_KINDS or kind in DEVICE_KINDS:
            return self._site(kind, iid, at_s, duration_s, device_id)
        raise Unplaceable(f"unknown incident kind {kind!r}")

    # -- resident incidents ---------------------------------------------------------------
    def _resident(
        self, kind: str, iid: str, rid: str, at_s: int | None, dur: int | None
    ) -> Incident:
        r, segs, f = self.r, self.plans[rid], self.facts[rid]
        p = self.sim.m.personas[rid]
        band = self.sim.m.band_of(rid)
        alone = any(res.id == rid and res.lives_alone for res in self.sim.m.residents)
        detail: dict[str, Any] = {}
        start: int
        if kind == "fall":
            if at_s is None:
                picked = None
                if r.random() < 0.35:  # on a night-time trip to the toilet
                    trips = [s for s in segs if s.end <= f.wake and s.act == "busy"]
                    if trips:
                        s0 = r.choice(trips)
                        picked = (s0.start + r.randint(20, 120), s0)
                if picked is None:
                    picked = _pick_time(r, segs, f.wake + 1800, f.bed - 1800, ("active", "busy"))
                if picked is None:
                    raise Unplaceable("no time at home to fall")
                start, seg = picked
            else:
                start, seg = at_s, self._here(segs, at_s)
            dur = dur or _lognormal_s(r, 2700, 0.7, 600, 4 * HOUR_S)
            detected = band is not None and r.random() < 0.8
            sos = r.random() < 0.35
            detail = {"room_code": seg.room, "detected_by_band": detected, "sos_pressed": sos}
            if detected:
                detail["_band_fall_ms"] = self.ms(start + r.uniform(2, 15))
                detail["_confidence"] = round(r.uniform(0.8, 0.98), 2)
            if sos and not self._press(detail, rid, band, start + r.uniform(30, 300)):
                detail["sos_pressed"] = False
            detail["helper_arrives"] = self.household and alone
            self._radar(detail, iid, seg.room, start)
        elif kind == "sos":
            if at_s is None:
                picked = _pick_time(r, segs, f.wake + 600, f.bed, ("active", "busy", "still"))
                if picked is None:
                    raise Unplaceable("resident not at home")
                start, seg = picked
            else:
                start, seg = at_s, self._here(segs, at_s)
            dur = dur or 1800
            detail = {"room_code": seg.room}
            if not self._press(detail, rid, band, start + 1):
                raise Unplaceable("resident has no SOS button or band")
            detail["via"] = "band" if "_band_sos_ms" in detail else "button"
        elif kind == "prolonged_inactivity":
            if not self.household:
                raise Unplaceable("prolonged inactivity is modelled in homes")
            if at_s is None:
                picked = _pick_time(r, segs, 9 * HOUR_S, 16 * HOUR_S, ("active", "still"))
                if picked is None:
                    raise Unplaceable("resident not at home")
                start, seg = picked
            else:
                start, seg = at_s, self._here(segs, at_s)
            dur = dur or int(r.uniform(3, 7) * HOUR_S)
            detail = {"room_code": seg.room if seg.room in ("liv", "bed") else "liv"}
            detail["helper_arrives"] = alone
        elif kind == "missed_wakeup":
            if not self.household or f.day_care is not None:
                raise Unplaceable("missed wake-up is modelled at home on a day at home")
            usual = int((p.wake_mean_min + 18 * self.c.winter) * 60)
            start = at_s if at_s is not None else usual
            dur = dur or int(r.uniform(2.5, 5) * HOUR_S)
            detail = {
                "usual_wake": _hhmm(usual),
                "wake_sd_min": round(p.wake_sd_min, 1),
                "_lead_s": max(0, start - min(f.wake, start) + 60),
            }
        elif kind in ("night_wandering", "bed_exit_not_returned"):
            if kind == "bed_exit_not_returned" and self.sim.kind != "nursing_home":
                raise Unplaceable("bed exits are watched by bed mats in nursing homes")
            if at_s is None:
                picked = _pick_time(r, segs, 0.5 * HOUR_S, min(4.5 * HOUR_S, f.wake - 1800), None)
                if picked is None or picked[1].act != "sleep":
                    raise Unplaceable("resident not asleep at home")
                start = picked[0]
            else:
                start = at_s
            lo, hi = (900, 4500) if kind == "night_wandering" else (2400, 7200)
            dur = dur or r.randint(lo, hi)
            detail = {"dementia": p.dementia}
        elif kind in ("tachycardia", "bradycardia", "low_spo2", "fever"):
            beds = [
                d for d in self.sim.m.devices if d.type == "bed_sensor" and d.resident_id == rid
            ]
            if band is None and not (beds and kind in ("tachycardia", "bradycardia")):
                raise Unplaceable(f"{kind} needs a band (or a bed mat) on the resident")
            if at_s is None:
                picked = _pick_time(r, segs, 0, DAY_S - 3600, None)
                if picked is None:
                    raise Unplaceable("resident not at home")
                start = picked[0]
            else:
                start = at_s
            lo, hi = {
                "tachycardia": (1200, 5400),
                "bradycardia": (1800, 7200),
                "low_spo2": (1800, 10800),
                "fever": (6 * 3600, 18 * 3600),
            }[kind]
            dur = dur or r.randint(lo, hi)
        elif kind == "nap_in_chair":
            if not self.household or f.day_care is not None:
                raise Unplaceable("naps in the chair are modelled at home")
            if at_s is None:
                picked = _pick_time(r, segs, 13 * HOUR_S, 15.5 * HOUR_S, None)
                if picked is None:
                    raise Unplaceable("resident not at home")
                start = picked[0]
            else:
                start = at_s
            dur = dur or r.randint(6000, 10200)
        elif kind == "family_visit":
            if not self.household or f.day_care is not None:
                raise Unplaceable("family visits start from home")
            start = at_s if at_s is not None else int(r.uniform(8.5, 10) * HOUR_S)
            if dur is None:
                end = (
                    r.uniform(18, 20.5) * HOUR_S
                    if r.random() < 0.6
                    else DAY_S + r.uniform(10, 17) * HOUR_S
                )
                dur = int(end) - start
            detail = {"overnight": start + dur > DAY_S}
        elif kind == "wearable_removed":
            if band is None:
                raise Unplaceable("resident has no band")
            if at_s is None:
                picked = _pick_time(r, segs, 8 * HOUR_S, 18 * HOUR_S, None)
                if picked is None:
                    raise Unplaceable("resident not at home")
                start = picked[0]
            else:
                start = at_s
            dur = dur or r.randint(2 * 3600, 8 * 3600)
            dropped = r.random() < 0.25
            detail = {"reason": "dropped" if dropped else "taken_off", "dropped": dropped}
            if dropped:  # the band hits the floor: a low-confidence fall alarm
                detail["_band_fall_ms"] = self.ms(start + r.uniform(1, 5))
                detail["_confidence"] = round(r.uniform(0.35, 0.65), 2)
        else:
            raise Unplaceable(f"unknown resident incident kind {kind!r}")
        assert dur is not None
        lo_ms, hi_ms = self.ms(start), self.ms(start + dur)
        if not self.free(rid, lo_ms, hi_ms):
            raise Unplaceable("resident already has an incident then")
        return Incident(
            iid,
            kind,
            self.sim.m.id,
            lo_ms,
            hi_ms,
            resident_id=rid,
            device_id=band.id if band is not None and kind == "wearable_removed" else None,
            benign=kind in BENIGN_KINDS,
            detail=detail,
        )

    def _here(self, segs: list[Seg], t: int) -> Seg:
        seg = at(segs, t)
        if seg is None or seg.room in AWAY:
            raise Unplaceable("resident is not at home at that time")
        return seg

    def _press(self, detail: dict[str, Any], rid: str, band: Any, t_s: float) -> bool:
        buttons = [
            d for d in self.sim.m.devices if d.type == "sos_button" and d.resident_id in (rid, None)
        ]
        if self.via == "band" and band is None:
            raise Unplaceable("resident has no band")
        if self.via == "button" and not buttons:
            raise Unplaceable("resident has no SOS button")
        if self.via == "button":
            use_band = False
        else:
            use_band = band is not None and (
                self.via == "band" or not buttons or self.r.random() < 0.5
            )
        if use_band:
            detail["_band_sos_ms"] = self.ms(t_s)
            return True
        if buttons:
            detail["_button"] = buttons[0].id
            detail["_button_press_ms"] = self.ms(t_s)
            return True
        return False

    def _radar(self, detail: dict[str, Any], iid: str, room: str, start: int) -> None:
        """Whether the site's radar fall sensor saw the fall (only sites with a radar get
        ``detected_by_radar``; its draw has its own random stream)."""
        radars = self.sim.m.devices_of(RADAR_TYPE)
        if not radars:
            return
        r = rng(self.sim.seed, "radar-fall", iid)
        p = self.sim.world.config.radar_fall_detection
        dev = radar_detects(r, [(d.id, d.room_code) for d in radars], room, p)
        detail["detected_by_radar"] = dev is not None
        if dev is not None:
            detail["_radar"] = dev
            detail["_radar_fall_ms"] = self.ms(start + r.uniform(5, 30))

    # -- site and device incidents --------------------------------------------------------
    def _site(
        self, kind: str, iid: str, at_s: int | None, dur: int | None, device_id: str | None
    ) -> Incident:
        r, c, m = self.r, self.c, self.sim.m
        detail: dict[str, Any] = {}
        dev = None
        if device_id is not None:
            dev = next((d for d in m.devices if d.id == device_id), None)
            if dev is None:
                raise Unplaceable(f"device {device_id} is not at site {m.id}")
        if kind in ZIGBEE_SITE_DEVICE:
            devs = [d for d in m.devices if d.type == ZIGBEE_SITE_DEVICE[kind]]
            if not devs:
                raise Unplaceable(f"site {m.id} has no {ZIGBEE_SITE_DEVICE[kind]}")
            dev = dev or devs[0]
            if kind == "smoke":
                window = r.choice([(11.0, 12.3), (17.0, 18.5)])
                lo, hi = 300, 1200
            elif kind == "gas":
                window, (lo, hi) = (7.0, 20.0), (600, 3600)
            elif kind == "carbon_monoxide":
                if at_s is None and c.winter < 0.4:
                    raise Unplaceable("CO from heating is modelled on cold days")
                window, (lo, hi) = (18.0, 23.0), (1800, 9000)
            else:
                window, (lo, hi) = (0.0, 23.5), (1800, 6 * 3600)
            detail = {"room_code": dev.room_code}
        elif kind in ("cold_room", "heat"):
            devs = [d for d in m.devices if d.type == "temperature_humidity_sensor"]
            if not devs:
                raise Unplaceable("no room thermometer")
            if at_s is None and kind == "cold_room" and c.mean >= 7:
                raise Unplaceable("heating failures are modelled on cold days")
            if at_s is None and kind == "heat" and c.mean <= 27:
                raise Unplaceable("heat is modelled on hot days")
            dev = dev or devs[0]
            if kind == "cold_room":
                window, (lo, hi) = (17.0, 22.0), (6 * 3600, 14 * 3600)
                detail = {"cause": "heating_failure", "outdoor_mean": round(c.mean, 1)}
            else:
                window, (lo, hi) = (11.0, 14.0), (4 * 3600, 7 * 3600)
                detail = {"cause": "heat_wave", "outdoor_mean": round(c.mean, 1)}
        elif kind == "device_offline":
            # radars are left out of the draw so that equipping a home with one does not
            # change which of its other devices go offline
            dev = dev or r.choice([d for d in m.devices if d.type != RADAR_TYPE])
            window, (lo, hi) = (0.0, 23.9), (3 * 3600, 20 * 3600)
            detail = {"type": dev.type, "native_id": dev.native_id}
        elif kind == "low_battery":
            cands = [d for d in m.devices if d.battery_powered and d.type != "wearable"]
            if not cands and dev is None:
                raise Unplaceable("no battery zigbee device")
            dev = dev or r.choice(cands)
            window, (lo, hi) = (0.0, 23.9), (86400, 3 * 86400)
            detail = {"type": dev.type, "threshold_pct": 15}
        elif kind == "gateway_offline":
            window, (lo, hi) = (0.0, 23.9), (600, 4 * 3600)
            detail = {"gateway_id": m.gateway_id, "fault": "uplink_loss"}
        else:
            raise Unplaceable(f"unknown site incident kind {kind!r}")
        start = at_s if at_s is not None else int(r.uniform(window[0], window[1]) * HOUR_S)
        dur = dur or r.randint(lo, hi)
        lo_ms, hi_ms = self.ms(start), self.ms(start + dur)
        dev_id = dev.id if dev is not None else None
        for inc in self.sim.incidents.values():
            if inc.kind == kind and inc.device_id == dev_id and inc.overlaps(lo_ms, hi_ms):
                raise Unplaceable("the same incident is already under way")
        return Incident(
            iid, kind, m.id, lo_ms, hi_ms, device_id=dev_id, benign=False, detail=detail
        )


def _rate(sim: SiteSim, kind: str, c: DayCtx, rid: str | None) -> float:
    cfg = sim.world.config
    rate = cfg.rates.get(kind, 0.0) * cfg.incident_scale
    if rid is not None:
        p = sim.m.personas[rid]
        if kind == "night_wandering" and p.dementia:
            rate *= 15
        if kind == "low_spo2" and p.spo2_base < 94:
            rate *= 3
        if kind == "family_visit" and c.weekday >= 5:
            rate *= 3
    return rate


def plan_incidents(
    sim: SiteSim, c: DayCtx, plans: dict[str, list[Seg]], facts: dict[str, Facts]
) -> list[Incident]:
    """Draw the day's random incidents (deterministic for the seed, site and day)."""
    r = rng(sim.seed, "incidents", sim.m.id, c.d)
    b = Builder(sim, c, plans, facts, r)
    out: list[Incident] = []
    n = 0
    person_kinds = [*RESIDENT_KINDS, "nap_in_chair", "family_visit", "wearable_removed"]
    for res in sim.m.residents:
        for kind in person_kinds:
            if r.random() >= _rate(sim, kind, c, res.id):
                continue
            n += 1
            try:
                inc = b.build(kind, f"{sim.m.id}.{c.d}.{n}", resident=res.id)
            except Unplaceable:
                continue
            sim.add_incident(inc)  # visible to the next conflict check
            out.append(inc)
        p = sim.m.personas[res.id]
        band = sim.m.band_of(res.id)
        f = facts.get(res.id)
        if band is not None and f is not None and r.random() < p.band_forget_prob:
            n += 1
            inc = Incident(
                f"{sim.m.id}.{c.d}.{n}",
                "wearable_removed",
                sim.m.id,
                b.ms(f.wake),
                b.ms(f.bed),
                resident_id=res.id,
                device_id=band.id,
                benign=True,
                detail={"reason": "forgotten"},
            )
            if b.free(res.id, inc.start_ms, inc.end_ms):
                sim.add_incident(inc)
                out.append(inc)
    for kind in (*SITE_KINDS, *DEVICE_KINDS):
        if r.random() >= _rate(sim, kind, c, None):
            continue
        n += 1
        try:
            inc = b.build(kind, f"{sim.m.id}.{c.d}.{n}")
        except Unplaceable:
            continue
        sim.add_incident(inc)
        out.append(inc)
    return out


def inject(
    sim: SiteSim,
    d: int,
    kind: str,
    *,
    at_s: int,
    resident: str | None = None,
    device_id: str | None = None,
    duration_s: int | None = None,
    via: str | None = None,
) -> Incident:
    """Build an on-demand incident on day ``d`` at ``at_s`` seconds after local midnight."""
    c = sim.ctx(d)
    plans, facts = sim.plans(c)
    sim.live_counter += 1
    r = rng(sim.seed, "live", sim.m.id, d, sim.live_counter)
    iid = f"{sim.m.id}.live.{d}.{sim.live_counter}"
    inc = Builder(sim, c, plans, facts, r).build(
        kind,
        iid,
        resident=resident,
        at_s=at_s,
        duration_s=duration_s,
        device_id=device_id,
        via=via,
    )
    inc.detail["injected"] = True
    sim.add_incident(inc)
    return inc
