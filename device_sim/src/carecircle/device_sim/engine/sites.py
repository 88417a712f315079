"""One site's day: plans, incidents and every native message its devices send.

:class:`SiteSim` renders a site day by day.  Each day is a pure function of the seed,
the site, the day number, the incidents that touch the day and the state carried
from the previous day (band batteries, room temperatures, messages that spill past
midnight), so the whole stream is reproducible byte for byte.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from carecircle.device_sim.devices import formats
from carecircle.device_sim.devices.catalog import RADAR, ZIGBEE_ALARM_FIELD
from carecircle.device_sim.engine.world import SimDevice, SiteModel, World, outdoor, outdoor_at
from carecircle.device_sim.incidents.model import Incident
from carecircle.device_sim.routines.persona import Persona
from carecircle.device_sim.routines.plan import (
    AWAY,
    HR_OFFSET,
    MOTION_GAP_S,
    STEPS_PER_MIN,
    Seg,
    facility_day,
    household_day,
    overlay,
)
from carecircle.device_sim.simtime import DAY_MS, DAY_S, HOUR_S, local_date, rng

#: One message of the stream: (time ms, topic, payload, retain).
Msg = tuple[int, str, str, bool]
BAND_INTERVAL_S = 120
#: Settling down (to sleep, to rest in bed, to doze in the chair): the PIR of the room
#: sees the person walk in even though the activity itself is still.
LIE_DOWN = frozenset({"sleep", "rest", "doze"})
#: Steps of the walk into a room to lie or sit down there (the band counts them as the
#: room's PIR sees them): a bedroom to the chair in the living room is a few metres.
WALK_IN_STEPS = (8, 25)
BED_INTERVAL_S = 60
CHECKIN_S = 3000
CLIMATE_S = 600
#: How long after a device falls silent its bridge publishes ``offline``.
Z2M_AVAILABILITY_S = {"mains": 600, "battery": 7200}
BAND_AWAY_OFFLINE_S = 300
RADAR_TYPE = RADAR.type
#: A mains radar's regular state report (its offline timeout is 1200 s, catalog.RADAR).
RADAR_CHECKIN_S = 900


@dataclass
class DayCtx:
    d: int
    day0: int
    weekday: int
    mean: float
    amp: float
    winter: float
    summer: float


@dataclass
class Facts:
    """What the plans say about a resident on a day (for incident placement)."""

    wake: int
    bed: int
    day_care: tuple[int, int] | None = None


def attendance(seed: int, p: Persona, d: int, weekday: int) -> tuple[int, int] | None:
    """(leave home, back home) in seconds on a day-care day, else ``None``."""
    if weekday not in p.day_care_days:
        return None
    r = rng(seed, "day-care", p.resident_id, d)
    if r.random() > 0.9:
        return None
    return int(r.uniform(7.8, 8.4) * HOUR_S), int(r.uniform(15.7, 16.4) * HOUR_S)


class Emitter:
    def __init__(self, down: dict[str, list[tuple[int, int]]]) -> None:
        self.msgs: list[Msg] = []
        self.down = down

    def alive(self, dev: SimDevice, t_ms: int) -> bool:
        return all(not lo <= t_ms < hi for lo, hi in self.down.get(dev.id, ()))

    def dev(
        self,
        dev: SimDevice,
        t_ms: int,
        payload: str,
        topic: str | None = None,
        retain: bool = False,
    ) -> None:
        if not self.alive(dev, t_ms):
            return
        if dev.ha and topic is None:  # a Home Assistant home: one state topic per entity
            for ha_topic, value in formats.ha_states(dev.ha, json.loads(payload)):
                self.msgs.append((t_ms, ha_topic, value, False))
            return
        self.msgs.append((t_ms, topic or dev.topic, payload, retain))

    def raw(self, t_ms: int, topic: str, payload: str, retain: bool = False) -> None:
        self.msgs.append((t_ms, topic, payload, retain))


@dataclass
class SiteState:
    band_battery: dict[str, float] = field(default_factory=dict)
    band_online: dict[str, bool] = field(default_factory=dict)
    temps: dict[str, float] = field(default_factory=dict)
    carry: list[Msg] = field(default_factory=list)


class SiteSim:
    """Renders one site's days; holds its incidents (ground truth) and carried state."""

    def __init__(self, world: World, model: SiteModel, start_day_ms: int) -> None:
        self.world = world
        self.m = model
        self.seed = world.config.seed
        self.start_day_ms = start_day_ms
        self.incidents: dict[str, Incident] = {}
        self._low_battery: dict[str, list[Incident]] = {}
        self.planned_days: set[int] = set()
        self.state = SiteState()
        self._snapshot: tuple[int, SiteState] | None = None
        self.kind = model.spec.kind
        self.live_counter = 0
        r = rng(self.seed, "site-habits", model.id)
        self.heat_set = r.uniform(16.5, 20.0)
        self.market_phase = r.randrange(5)

    # -- public -------------------------------------------------------------------------
    def day(self, d: int) -> list[Msg]:
        self._snapshot = (d, copy.deepcopy(self.state))
        return self._render(d)

    def rerender(self, d: int) -> list[Msg]:
        """Render day ``d`` again (after an incident was injected), from its start state."""
        if self._snapshot is None or self._snapshot[0] != d:
            raise ValueError(f"day {d} of {self.m.id} has not been rendered")
        self.state = copy.deepcopy(self._snapshot[1])
        for prefix in (f"{self.m.id}.{d}.away.", f"{self.m.id}.{d}.charge."):
            for iid in [i for i in self.incidents if i.startswith(prefix)]:
                del self.incidents[iid]
        return self._render(d)

    def add_incident(self, inc: Incident) -> None:
        self.incidents[inc.incident_id] = inc
        if inc.kind == "low_battery" and inc.device_id is not None:
            lst = self._low_battery.setdefault(inc.device_id, [])
            lst[:] = [i for i in lst if i.incident_id != inc.incident_id] + [inc]

    def ctx(self, d: int) -> DayCtx:
        day0 = self.start_day_ms + d * DAY_MS
        mean, amp = outdoor(self.seed, day0)
        return DayCtx(
            d=d,
            day0=day0,
            weekday=local_date(day0).weekday(),
            mean=mean,
            amp=amp,
            winter=min(1.0, max(0.0, (13.0 - mean) / 9.0)),
            summer=min(1.0, max(0.0, (mean - 22.0) / 6.0)),
        )

    def plans(self, c: DayCtx) -> tuple[dict[str, list[Seg]], dict[str, Facts]]:
        plans: dict[str, list[Seg]] = {}
        facts: dict[str, Facts] = {}
        for res in self.m.residents:
            p = self.m.personas[res.id]
            r = rng(self.seed, "plan", res.id, c.d)
            if self.kind == "household":
                dc = attendance(self.seed, p, c.d, c.weekday)
                segs, wake, bed = household_day(
                    p,
                    r,
                    weekday=c.weekday,
                    winter=c.winter,
                    market_day=(c.d + self.market_phase) % 5 == 0,
                    day_care=dc,
                )
                facts[res.id] = Facts(wake, bed, dc)
            else:
                segs, wake, bed = facility_day(
                    p, r, dependent=res.care_level == "dependent", winter=c.winter
                )
                facts[res.id] = Facts(wake, bed)
            plans[res.id] = segs
        return plans, facts

    # -- rendering ------------------------------------------------------------------------
    def _render(self, d: int) -> list[Msg]:
        c = self.ctx(d)
        plans, facts = self.plans(c)
        if d not in self.planned_days:
            self.planned_days.add(d)
            from carecircle.device_sim.incidents.planner import plan_incidents

            for inc in plan_incidents(self, c, plans, facts):
                self.add_incident(inc)
        day_end = c.day0 + DAY_MS
        active = sorted(
            (i for i in self.incidents.values() if i.overlaps(c.day0, day_end)),
            key=lambda i: (i.start_ms, i.incident_id),
        )
        plans = self._apply_overlays(c, plans, active)
        if self.kind == "household":
            self._label_outings(c, plans, active)
        r = rng(self.seed, "render", self.m.id, d)
        down = self._down_windows(c, active, r)
        out = Emitter(down)
        self._motion(c, plans, active, out, r)
        self._doors(c, plans, active, out, r)
        self._climate(c, plans, active, out, r)
        self._detectors(c, active, out, r)
        self._buttons(c, active, out, r)
        self._bands(c, plans, active, out, r)
        self._beds(c, plans, active, out, r)
        self._availability(c, active, out)
        msgs = out.msgs
        if self.world.config.imperfect:
            msgs = self._imperfect(msgs, rng(self.seed, "imperfect", self.m.id, d))
        # Radars draw from their own random streams: a home with one renders every other
        # device exactly as the same home without it.
        radar_out = Emitter(down)
        self._radars(c, plans, active, radar_out)
        if radar_out.msgs:
            radar_msgs = radar_out.msgs
            if self.world.config.imperfect:
                radar_msgs = self._imperfect(
                    radar_msgs, rng(self.seed, "imperfect-radar", self.m.id, d)
                )
            msgs.extend(radar_msgs)
        msgs.extend(self.state.carry)
        msgs.sort(key=lambda m: m[0])
        cut = bisect.bisect_left([m[0] for m in msgs], day_end)
        self.state.carry = msgs[cut:]
        return msgs[:cut]

    def _rel(self, c: DayCtx, ms: int) -> int:
        return (ms - c.day0) // 1000

    def _apply_overlays(
        self, c: DayCtx, plans: dict[str, list[Seg]], active: list[Incident]
    ) -> dict[str, list[Seg]]:
        for inc in active:
            rid = inc.resident_id
            if rid is None or rid not in plans:
                continue
            s, e = self._rel(c, inc.start_ms), self._rel(c, inc.end_ms)
            room = str(inc.detail.get("room_code", "liv" if self.kind == "household" else "room"))
            new: list[Seg] = []
            if inc.kind in ("fall", "prolonged_inactivity"):
                new = [Seg(s, e, room, "lying")]
            elif inc.kind == "missed_wakeup":
                new = [Seg(s - int(inc.detail.get("_lead_s", 0)), e, "bed", "lying")]
            elif inc.kind == "night_wandering":
                home = "liv" if self.kind == "household" else "cor"
                back = "bed" if self.kind == "household" else "inbed"
                new = [
                    Seg(s - 120, s, home, "active"),
                    Seg(s, e, "out", "out"),
                    Seg(e, e + 180, home, "active"),
                    Seg(e + 180, e + 900, back, "sleep"),
                ]
            elif inc.kind == "bed_exit_not_returned":
                new = [Seg(s, e, "cor", "active")]
            elif inc.kind == "sos":
                new = [Seg(s, e, room, "still")]
            elif inc.kind == "nap_in_chair":
                new = [Seg(s, e, "liv", "doze")]
            elif inc.kind == "family_visit":
                new = [Seg(s, e, "out", "out")]
            if new:
                plans[rid] = overlay(plans[rid], new)
        return plans

    def _label_outings(
        self, c: DayCtx, plans: dict[str, list[Seg]], active: list[Incident]
    ) -> None:
        for rid, segs in plans.items():
            busy = [i for i in active if i.resident_id == rid]
            n = 0
            for s in segs:
                if s.room not in AWAY or s.end - s.start < 3600 or s.start < 0 or s.end > DAY_S:
                    continue
                lo, hi = c.day0 + s.start * 1000, c.day0 + s.end * 1000
                if any(i.overlaps(lo, hi) for i in busy):
                    continue
                n += 1
                iid = f"{self.m.id}.{c.d}.away.{rid}.{n}"
                self.add_incident(
                    Incident(
                        iid,
                        "away_from_home",
                        self.m.id,
                        lo,
                        hi,
                        resident_id=rid,
                        benign=True,
                        detail={"where": "day_care" if s.room == "dc" else "outing"},
                    )
                )

    def _down_windows(
        self, c: DayCtx, active: list[Incident], r: random.Random
    ) -> dict[str, list[tuple[int, int]]]:
        down: dict[str, list[tuple[int, int]]] = {}
        for inc in active:
            if inc.kind == "device_offline" and inc.device_id:
                down.setdefault(inc.device_id, []).append((inc.start_ms, inc.end_ms))
        if self.world.config.imperfect:
            radar_r = rng(self.seed, "radar-links", self.m.id, c.d)
            for dev in self.m.devices:
                dr = radar_r if dev.type == RADAR_TYPE else r
                if dr.random() < 0.04:  # a dropped zigbee/BLE link for a while, no notice
                    lo = c.day0 + int(dr.uniform(0, DAY_S)) * 1000
                    down.setdefault(dev.id, []).append((lo, lo + dr.randint(300, 2400) * 1000))
        return down

    # -- motion ---------------------------------------------------------------------------
    def _pir_code(self, rid: str, room: str) -> str | None:
        if room in AWAY:
            return None
        if self.kind == "household":
            return room
        if room in ("room", "inbed"):
            return self.m.resident_room.get(rid)
        return room

    def _motion(
        self,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        active: list[Incident],
        out: Emitter,
        r: random.Random,
    ) -> None:
        pirs = {d.room_code: d for d in self.m.devices_of("motion_sensor") if d.room_code}
        if not pirs:
            return
        dets: dict[str, list[float]] = {code: [] for code in pirs}
        for rid, segs in plans.items():
            for i, s in enumerate(segs):
                code = self._pir_code(rid, s.room)
                if code not in dets:
                    continue
                lo, hi = max(0, s.start), min(DAY_S, s.end)
                if lo >= hi:
                    continue
                gap = MOTION_GAP_S.get(s.act, 0.0)
                lst = dets[code]
                if s.act in ("active", "busy", "still"):
                    lst.append(lo + r.uniform(1, 8))
                elif (
                    s.act in LIE_DOWN
                    and i > 0
                    and s.start >= 0
                    and self._pir_code(rid, segs[i - 1].room) != code
                ):
                    # walked in from another room to lie down or sit down: the room's PIR
                    # sees it (the first segment of a day is the night going on)
                    lst.append(lo + r.uniform(1, 8))
                if gap <= 0:
                    continue
                t = lo + r.expovariate(1 / gap)
                while t < hi:
                    lst.append(t)
                    t += r.expovariate(1 / gap)
        for inc in active:
            if inc.kind == "fall" and inc.resident_id in plans:
                code = self._pir_code(inc.resident_id, str(inc.detail.get("room_code", "")))
                fell = self._rel(c, inc.start_ms)
                if code in dets and 0 <= fell < DAY_S:
                    dets[code].append(fell + r.uniform(0, 12))
            if inc.kind in ("fall", "prolonged_inactivity") and inc.detail.get("helper_arrives"):
                e = self._rel(c, inc.end_ms)
                for code in ("liv", "cor"):
                    if code in dets and 0 <= e - 60 < DAY_S:
                        dets[code].extend([e - 60 + r.uniform(0, 30), e + r.uniform(0, 60)])
        self._facility_motion(c, dets, r)
        for code, lst in dets.items():
            dev = pirs[code]
            if self.world.config.imperfect:
                lst.extend(r.uniform(0, DAY_S) for _ in range(_poisson(r, 0.3)))  # ghost triggers
            lst.sort()
            if self.world.config.imperfect:
                lst = [t for t in lst if r.random() >= dev.miss_prob]
            self._render_pir(c, dev, lst, out, r)

    def _facility_motion(self, c: DayCtx, dets: dict[str, list[float]], r: random.Random) -> None:
        if self.kind == "household":
            return

        def stream(code: str, lo: float, hi: float, gap: float) -> None:
            if code not in dets:
                return
            t = lo + r.expovariate(1 / gap)
            while t < hi:
                dets[code].append(t)
                t += r.expovariate(1 / gap)

        if self.kind == "nursing_home":
            stream("cor", 6 * HOUR_S, 21 * HOUR_S, 150)
            stream("cor", 0, 6 * HOUR_S, 1500)
            stream("cor", 21 * HOUR_S, DAY_S, 1500)
            stream("wc", 6.5 * HOUR_S, 20 * HOUR_S, 400)
            rooms = sorted({code for code in self.m.resident_room.values() if code})
            for hour in (22, 0, 2, 4):  # night rounds: a carer looks into every room
                t = hour * HOUR_S + r.uniform(-600, 600)
                for code in rooms:
                    t += r.uniform(40, 150)
                    if code in dets and 0 <= t < DAY_S:
                        dets[code].append(t)
                    if "cor" in dets and 0 <= t < DAY_S:
                        dets["cor"].append(t + 20)
        elif self.kind == "day_care" and c.weekday < 5:
            stream("cor", 7.75 * HOUR_S, 17 * HOUR_S, 300)
            present = [attendance(self.seed, p, c.d, c.weekday) for p in self.m.attendees]
            n = sum(1 for a in present if a is not None)
            if n:
                arrive = min(a[0] for a in present if a is not None) + 1500
                leave = max(a[1] for a in present if a is not None) - 1500
                stream("act", arrive, 11.5 * HOUR_S, 60 / max(1, n / 4))
                stream("din", 11.5 * HOUR_S, 12.5 * HOUR_S, 30)
                stream("act", 13.5 * HOUR_S, leave, 60 / max(1, n / 4))
                stream("wc", arrive, leave, 3600 / max(1, n))

    def _render_pir(
        self, c: DayCtx, dev: SimDevice, dets: list[float], out: Emitter, r: random.Random
    ) -> None:
        changes: list[tuple[float, bool]] = []
        last = -1e9
        occ = False
        for t in dets:
            if occ and t > last + 90:
                changes.append((last + 90, False))
                occ = False
            if t - last >= 60:
                changes.append((t, True))
                occ = True
                last = t
        if occ:
            changes.append((last + 90, False))
        times = [t for t, _ in changes]
        for t, state in changes:
            out.dev(dev, c.day0 + int(t * 1000), self._z2m(c, dev, t, occupancy=state))
        t = dev.phase_s
        while t < DAY_S:
            i = bisect.bisect_right(times, t) - 1
            state = changes[i][1] if i >= 0 else False
            out.dev(dev, c.day0 + int(t * 1000), self._z2m(c, dev, t, occupancy=state))
            t += CHECKIN_S * r.uniform(0.92, 1.08)

    # -- zigbee payloads ------------------------------------------------------------------
    def battery(self, c: DayCtx, dev: SimDevice, t_s: float) -> int:
        t_ms = c.day0 + int(t_s * 1000)
        level = dev.battery0 - dev.drain_per_day * (t_ms - self.start_day_ms) / DAY_MS
        for inc in self._low_battery.get(dev.id, ()):
            if t_ms < inc.start_ms:
                continue
            if t_ms < inc.end_ms:
                frac = (t_ms - inc.start_ms) / max(1, inc.end_ms - inc.start_ms)
                level = 15 - 10 * frac
            else:  # replaced
                level = 100 - dev.drain_per_day * (t_ms - inc.end_ms) / DAY_MS
        return max(1, min(100, int(level)))

    def _z2m(self, c: DayCtx, dev: SimDevice, t_s: float, **state: Any) -> str:
        body: dict[str, Any] = {}
        if dev.battery_powered:
            batt = self.battery(c, dev, t_s)
            body["battery"] = batt
            if dev.type in ("smoke_detector", "co_detector", "water_leak_sensor"):
                body["battery_low"] = batt <= 15
        body.update(state)
        lq = dev.linkquality + int(10 * math.sin(t_s / 5000 + dev.phase_s))
        body["linkquality"] = max(0, min(255, lq))
        if dev.battery_powered and dev.type in (
            "motion_sensor",
            "door_sensor",
            "water_leak_sensor",
        ):
            body["voltage"] = 2600 + 4 * body["battery"]
        if self.m.z2m_last_seen:
            from carecircle.device_sim.simtime import iso_local

            body["last_seen"] = iso_local(c.day0 + int(t_s * 1000))
        return formats.flat_json(body)

    # -- doors ----------------------------------------------------------------------------
    def _doors(
        self,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        active: list[Incident],
        out: Emitter,
        r: random.Random,
    ) -> None:
        doors = self.m.devices_of("door_sensor")
        if not doors:
            return
        dev = doors[0]
        events: list[float] = []
        if self.kind == "household":
            for segs in plans.values():
                prev_away: bool | None = None
                for s in segs:
                    away = s.room in AWAY
                    if prev_away is not None and away != prev_away and 0 <= s.start < DAY_S:
                        events.append(s.start + r.uniform(-20, 5))
                    prev_away = away
            for _ in range(_poisson(r, 0.8)):  # rubbish out, a neighbour at the door
                events.append(r.uniform(8 * HOUR_S, 18 * HOUR_S))
        else:
            busy = self.kind == "nursing_home" or c.weekday < 5
            for _ in range(_poisson(r, 20 if busy else 3)):
                events.append(r.uniform(7 * HOUR_S, 19 * HOUR_S))
            if self.kind == "day_care":
                for p in self.m.attendees:
                    a = attendance(self.seed, p, c.d, c.weekday)
                    if a is not None:  # the van drops them off and picks them up
                        events.append(a[0] + 1500 + r.uniform(-120, 120))
                        events.append(a[1] - 1500 + r.uniform(-120, 120))
            for inc in active:
                if inc.kind == "night_wandering":
                    events.extend([self._rel(c, inc.start_ms), self._rel(c, inc.end_ms)])
        for inc in active:
            if inc.detail.get("helper_arrives"):
                e = self._rel(c, inc.end_ms) - 90
                if 0 <= e < DAY_S:
                    events.append(e)
        events.sort()
        last = -1e9
        opens: list[tuple[float, float]] = []
        for t in events:
            if t < last + 90 or not 0 <= t < DAY_S:
                continue
            dur = r.uniform(3, 25)
            opens.append((t, t + dur))
            last = t
        for lo, hi in opens:
            out.dev(dev, c.day0 + int(lo * 1000), self._z2m(c, dev, lo, contact=False))
            out.dev(dev, c.day0 + int(hi * 1000), self._z2m(c, dev, hi, contact=True))
        t = dev.phase_s
        while t < DAY_S:
            out.dev(dev, c.day0 + int(t * 1000), self._z2m(c, dev, t, contact=True))
            t += CHECKIN_S * r.uniform(0.92, 1.08)

    # -- climate --------------------------------------------------------------------------
    def _presence(self, plans: dict[str, list[Seg]], t: int) -> str:
        """'awake', 'asleep' or 'empty' for heating."""
        state = "empty"
        for segs in plans.values():
            for s in segs:
                if s.start <= t < s.end:
                    if s.room not in AWAY:
                        if s.act in ("sleep", "rest"):
                            state = "asleep" if state == "empty" else state
                        else:
                            return "awake"
                    break
        return state

    def _climate(
        self,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        active: list[Incident],
        out: Emitter,
        r: random.Random,
    ) -> None:
        devs = self.m.devices_of("temperature_humidity_sensor")
        cold = [i for i in active if i.kind == "cold_room"]
        hot = [i for i in active if i.kind == "heat"]
        for dev in devs:
            t = dev.phase_s % CLIMATE_S
            temp = self.state.temps.get(dev.id)
            bedroom = dev.room_code in ("bed",) or (dev.room_code or "").startswith("rm")
            while t < DAY_S:
                t_ms = c.day0 + int(t * 1000)
                o = outdoor_at(c.mean, c.amp, t)
                if self.kind == "household":
                    presence = self._presence(plans, int(t))
                elif self.kind == "nursing_home":
                    presence = "awake" if 6 * HOUR_S <= t < 21 * HOUR_S else "asleep"
                else:
                    presence = (
                        "awake" if c.weekday < 5 and 8 * HOUR_S <= t < 17 * HOUR_S else "empty"
                    )
                if c.mean < 15:
                    if presence == "awake":
                        target = self.heat_set
                    elif presence == "asleep":
                        target = max(o + 6, 12.5 if bedroom else 10.0)
                    else:
                        target = max(o + 5, 8.8)
                else:
                    target = min(o + 1.5, 30.5)
                if any(i.start_ms <= t_ms < i.end_ms for i in cold):
                    target = o + 1.0
                if any(i.start_ms <= t_ms < i.end_ms for i in hot):
                    target = max(o + 4.0, 34.5)
                if temp is None:
                    temp = target
                temp += (target - temp) * (1 - math.exp(-CLIMATE_S / 4000))
                shown = round(temp + r.gauss(0, 0.15), 2)
                hum = round(max(25.0, min(95.0, 68 + 8 * math.sin(t / 9000) + r.gauss(0, 2))), 2)
                out.dev(dev, t_ms, self._z2m(c, dev, t, humidity=hum, temperature=shown))
                t += CLIMATE_S + r.uniform(-20, 20)
            if temp is not None:
                self.state.temps[dev.id] = temp

    # -- alarm detectors and buttons ------------------------------------------------------
    def _detectors(self, c: DayCtx, active: list[Incident], out: Emitter, r: random.Random) -> None:
        for dtype, fld in ZIGBEE_ALARM_FIELD.items():
            for dev in self.m.devices_of(dtype):
                alarms = [i for i in active if i.device_id == dev.id and i.kind == fld]
                every = CHECKIN_S if dev.battery_powered else 900
                t = dev.phase_s % every
                while t < DAY_S:
                    t_ms = c.day0 + int(t * 1000)
                    on = any(i.start_ms <= t_ms < i.end_ms for i in alarms)
                    out.dev(dev, t_ms, self._z2m(c, dev, t, **{fld: on}))
                    t += every * r.uniform(0.95, 1.05)
                for inc in alarms:
                    s, e = self._rel(c, inc.start_ms), self._rel(c, inc.end_ms)
                    t = float(s)
                    while t < min(e, DAY_S):
                        if t >= 0:
                            out.dev(
                                dev, c.day0 + int(t * 1000), self._z2m(c, dev, t, **{fld: True})
                            )
                        t += 300
                    if 0 <= e < DAY_S:
                        out.dev(dev, inc.end_ms, self._z2m(c, dev, e, **{fld: False}))

    def _buttons(self, c: DayCtx, active: list[Incident], out: Emitter, r: random.Random) -> None:
        buttons = self.m.devices_of("sos_button")
        for dev in buttons:
            t = dev.phase_s
            while t < DAY_S:
                out.dev(dev, c.day0 + int(t * 1000), self._z2m(c, dev, t))
                t += CHECKIN_S * r.uniform(0.92, 1.08)
        for inc in active:
            press = inc.detail.get("_button_press_ms")
            dev_id = inc.detail.get("_button")
            if not isinstance(press, int) or not c.day0 <= press < c.day0 + DAY_MS:
                continue
            for dev in buttons:
                if dev.id == dev_id:
                    action = "emergency" if "TuYa" in dev.model else "single"
                    t = (press - c.day0) / 1000
                    out.dev(dev, press, self._z2m(c, dev, t, action=action))

    # -- radar fall sensors ----------------------------------------------------------------
    def _radars(
        self, c: DayCtx, plans: dict[str, list[Seg]], active: list[Incident], out: Emitter
    ) -> None:
        """HEIMAN HS2FD-style radars: ``occupancy`` while someone is in the room (it
        holds presence 20-60 s after they leave), ``fall_status`` ``fall_alarm`` from a
        fall it detected (``_radar`` in the fall's detail) until the person is helped up
        or gets up, else ``normal``; a state message on every change and every ~15 min."""
        radars = self.m.devices_of(RADAR_TYPE)
        if not radars:
            return
        r = rng(self.seed, "radar-render", self.m.id, c.d)
        for dev in radars:
            spans: list[tuple[float, float]] = []
            for rid, segs in plans.items():
                for seg in segs:
                    if self._pir_code(rid, seg.room) != dev.room_code:
                        continue
                    s_lo, s_hi = max(0, seg.start), min(DAY_S, seg.end)
                    if s_lo < s_hi:
                        spans.append((s_lo, s_hi))
            occupied: list[tuple[float, float]] = []
            for lo, hi in sorted(spans):
                a = lo + (r.uniform(1, 4) if lo > 0 else 0.0)
                b = hi + (r.uniform(20, 60) if hi < DAY_S else 0.0)
                if occupied and a <= occupied[-1][1]:
                    occupied[-1] = (occupied[-1][0], max(occupied[-1][1], b))
                else:
                    occupied.append((a, b))
            alarms: list[tuple[float, float]] = []
            for inc in active:
                at_ms = inc.detail.get("_radar_fall_ms")
                if inc.detail.get("_radar") != dev.id or not isinstance(at_ms, int):
                    continue
                end_s = self._rel(c, inc.end_ms) + r.uniform(5, 30)
                alarms.append(((at_ms - c.day0) / 1000, end_s))
            changes = [t for span in (*occupied, *alarms) for t in span if 0 < t < DAY_S]
            times = set(changes)
            t = dev.phase_s % RADAR_CHECKIN_S
            while t < DAY_S:
                times.add(t)
                t += RADAR_CHECKIN_S * r.uniform(0.95, 1.05)
            for t in sorted(times):
                fall = any(lo <= t < hi for lo, hi in alarms)
                occ = fall or any(lo <= t < hi for lo, hi in occupied)
                out.dev(
                    dev,
                    c.day0 + int(t * 1000),
                    self._z2m(
                        c, dev, t, fall_status="fall_alarm" if fall else "normal", occupancy=occ
                    ),
                )

    # -- wearable -------------------------------------------------------------------------
    def _bands(
        self,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        active: list[Incident],
        out: Emitter,
        r: random.Random,
    ) -> None:
        for rid, segs in plans.items():
            dev = self.m.band_of(rid)
            if dev is None:
                continue
            p = self.m.personas[rid]
            mine = [i for i in active if i.resident_id == rid]
            removed = [(i.start_ms, i.end_ms) for i in mine if i.kind == "wearable_removed"]
            battery = self.state.band_battery.get(dev.id, dev.battery0)
            online = self.state.band_online.get(dev.id, True)
            charging_until = -1
            steps = 0
            away_since: int | None = None
            k = 0
            idx = 0
            t = dev.phase_s % BAND_INTERVAL_S
            alarm_topic = dev.topic.rsplit("/", 1)[0] + "/alarm"
            walk = rng(self.seed, "walk-in", rid, c.d)
            walked_in = 0  # steps of walks into a room to lie down, not yet counted
            while t < DAY_S:
                ti = int(t)
                t_ms = c.day0 + int(t * 1000)
                while idx < len(segs) - 1 and segs[idx].end <= ti:
                    idx += 1
                    if _walked_in(segs, idx):
                        walked_in += walk.randint(*WALK_IN_STEPS)
                seg = segs[idx]
                dev_ts = self._band_clock(dev, t_ms)
                if seg.room in AWAY:
                    if away_since is None:
                        away_since = ti
                    if online and ti - away_since >= BAND_AWAY_OFFLINE_S:
                        off_ms = c.day0 + (away_since + BAND_AWAY_OFFLINE_S) * 1000
                        out.dev(dev, off_ms, "offline", dev.avail_topic, retain=True)
                        online = False
                    battery -= 0.025
                    t += BAND_INTERVAL_S
                    continue
                if away_since is not None:
                    steps += int(
                        (ti - away_since) / 60 * STEPS_PER_MIN["out"] * r.uniform(0.3, 0.8)
                    )
                    away_since = None
                if not online and out.alive(dev, t_ms):
                    out.dev(dev, t_ms - 500, "online", dev.avail_topic, retain=True)
                    online = True
                if charging_until < 0 and battery < 30 and 20 * HOUR_S <= t < 20 * HOUR_S + 130:
                    charging_until = ti + int((96 - battery) / 1.0 * BAND_INTERVAL_S)
                    self.add_incident(
                        Incident(
                            f"{self.m.id}.{c.d}.charge.{rid}",
                            "wearable_removed",
                            self.m.id,
                            t_ms,
                            c.day0 + charging_until * 1000,
                            resident_id=rid,
                            device_id=dev.id,
                            benign=True,
                            detail={"reason": "charging"},
                        )
                    )
                charging = charging_until >= 0 and ti < charging_until
                off = charging or any(lo <= t_ms < hi for lo, hi in removed)
                battery += 1.0 if charging else -0.025
                battery = max(0.0, min(100.0, battery))
                if not off:
                    steps += walked_in  # off the wrist, the band counted none of it
                walked_in = 0
                if off:
                    payload = formats.band_telemetry(
                        dev.native_id, dev_ts, int(battery), False, steps
                    )
                else:
                    steps += int(STEPS_PER_MIN.get(seg.act, 0.0) * 2 * r.uniform(0.5, 1.5))
                    hr = p.hr_rest + HR_OFFSET.get(seg.act, 0.0) + r.gauss(0, 2.5)
                    spo2v: float | None = (
                        min(100.0, p.spo2_base + r.gauss(0, 0.8)) if k % 5 == 0 else None
                    )
                    skin: float | None = (
                        p.skin_temp + (0.6 if seg.act == "sleep" else 0.0) + r.gauss(0, 0.25)
                        if k % 2 == 0
                        else None
                    )
                    for inc in mine:
                        if not inc.start_ms <= t_ms < inc.end_ms:
                            continue
                        if inc.kind == "tachycardia":
                            hr = r.uniform(124, 152)
                        elif inc.kind == "bradycardia":
                            hr = r.uniform(34, 45)
                        elif inc.kind == "low_spo2":
                            spo2v = r.uniform(82, 89)
                        elif inc.kind == "fever":
                            hr += 12
                            skin = p.skin_temp + r.uniform(2.6, 3.4) if skin is not None else None
                    payload = formats.band_telemetry(
                        dev.native_id,
                        dev_ts,
                        int(battery),
                        True,
                        steps,
                        hr=round(hr),
                        spo2=round(spo2v) if spo2v is not None else None,
                        skin_temp=round(skin, 1) if skin is not None else None,
                    )
                out.dev(dev, t_ms, payload)
                k += 1
                t += BAND_INTERVAL_S + r.uniform(-1.5, 1.5)
            self.state.band_battery[dev.id] = battery
            self.state.band_online[dev.id] = online
            for inc in mine:
                for key, kind in (("_band_fall_ms", "fall"), ("_band_sos_ms", "sos")):
                    at_ms = inc.detail.get(key)
                    if isinstance(at_ms, int) and c.day0 <= at_ms < c.day0 + DAY_MS:
                        conf = float(inc.detail.get("_confidence", 1.0))
                        # the same clock as its telemetry: before session 7 the alarm
                        # lacked the drift, and after a month a dropped band's last
                        # report on the wrist, before the drop, could carry a later
                        # time than the alarm (the worn check then raised the fall)
                        ts = self._band_clock(dev, at_ms)
                        out.dev(
                            dev,
                            at_ms,
                            formats.band_alarm(dev.native_id, ts, kind, conf),
                            alarm_topic,
                        )

    def _band_clock(self, dev: SimDevice, t_ms: int) -> int:
        """The band's own clock at true time ``t_ms``: its skew and its drift."""
        return t_ms + dev.skew_ms + int(dev.drift_ppm * (t_ms - self.start_day_ms) / 1e6)

    # -- bed mats -------------------------------------------------------------------------
    def _beds(
        self,
        c: DayCtx,
        plans: dict[str, list[Seg]],
        active: list[Incident],
        out: Emitter,
        r: random.Random,
    ) -> None:
        for dev in self.m.devices_of("bed_sensor"):
            rid = dev.resident_id
            if rid is None or rid not in plans:
                continue
            segs = plans[rid]
            p = self.m.personas[rid]
            mine = [i for i in active if i.resident_id == rid]
            idx = 0
            prev: bool | None = None
            t = dev.phase_s % BED_INTERVAL_S
            last_sent = -1e9
            while t < DAY_S:
                ti = int(t)
                while idx < len(segs) - 1 and segs[idx].end <= ti:
                    idx += 1
                seg = segs[idx]
                occupied = seg.room == "inbed"
                changed = prev is not None and occupied != prev
                if occupied or changed or t - last_sent >= 300:
                    t_ms = c.day0 + int(t * 1000)
                    dev_ms = t_ms + dev.skew_ms
                    if occupied:
                        hr = p.hr_rest + HR_OFFSET.get(seg.act, 0.0) + r.gauss(0, 2)
                        for inc in mine:
                            if inc.start_ms <= t_ms < inc.end_ms:
                                if inc.kind == "tachycardia":
                                    hr = r.uniform(124, 150)
                                elif inc.kind == "bradycardia":
                                    hr = r.uniform(34, 45)
                        move = r.randint(0, 2) if seg.act == "sleep" else r.randint(1, 5)
                        payload = formats.bed_state(
                            dev_ms, True, round(hr), round(r.gauss(15, 1.5)), move
                        )
                    else:
                        payload = formats.bed_state(dev_ms, False)
                    out.dev(dev, t_ms, payload)
                    last_sent = t
                prev = occupied
                t += BED_INTERVAL_S

    # -- availability, gateway faults -----------------------------------------------------
    def _availability(self, c: DayCtx, active: list[Incident], out: Emitter) -> None:
        day_end = c.day0 + DAY_MS
        for inc in active:
            if inc.kind == "gateway_offline":
                topic = self.m.bases.uplink_fault(self.m.gateway_id)
                for at_ms, up in ((inc.start_ms, False), (inc.end_ms, True)):
                    if c.day0 <= at_ms < day_end:
                        body = {"gw": self.m.gateway_id, "site": self.m.id, "up": up}
                        out.raw(at_ms, topic, formats.dumps(body), retain=True)
            if inc.kind != "device_offline" or inc.device_id is None:
                continue
            dev = next((d for d in self.m.devices if d.id == inc.device_id), None)
            if dev is None:
                continue
            if dev.type == "wearable":
                delay = BAND_AWAY_OFFLINE_S
            elif dev.type == "bed_sensor":
                delay = 120
            else:
                delay = Z2M_AVAILABILITY_S["battery" if dev.battery_powered else "mains"]
            off_at = inc.start_ms + delay * 1000
            if off_at < inc.end_ms and c.day0 <= off_at < day_end:
                out.raw(off_at, dev.avail_topic, self.availability(dev, False), retain=True)
            if c.day0 <= inc.end_ms < day_end:
                out.raw(inc.end_ms, dev.avail_topic, self.availability(dev, True), retain=True)

    def availability(self, dev: SimDevice, online: bool) -> str:
        if dev.family.value == "zigbee2mqtt":
            return formats.z2m_availability(online, self.m.z2m_v2)
        return "online" if online else "offline"

    def announce(self, at_ms: int) -> list[Msg]:
        """Retained bridge state and availability of every device at the stream's start."""
        msgs: list[Msg] = []
        if any(d.family.value == "zigbee2mqtt" for d in self.m.devices):
            bridge = f"{self.m.bases.zigbee2mqtt}/bridge/state"
            msgs.append((at_ms, bridge, formats.z2m_availability(True, self.m.z2m_v2), True))
        for dev in self.m.devices:
            for e in dev.ha:
                config = formats.ha_config(e, dev.avail_topic, dev.native_id, dev.model)
                msgs.append((at_ms, e.config_topic, config, True))
            msgs.append((at_ms, dev.avail_topic, self.availability(dev, True), True))
        return msgs

    # -- sensor imperfections -------------------------------------------------------------
    def _imperfect(self, msgs: Iterable[Msg], r: random.Random) -> list[Msg]:
        out: list[Msg] = []
        for m in msgs:
            if m[3]:
                out.append(m)
                continue
            x = r.random()
            if x < 0.003:  # delivered late, after newer messages (out of order)
                out.append((m[0] + r.randint(2000, 30000), m[1], m[2], m[3]))
            elif x < 0.007:  # delivered twice
                out.append(m)
                out.append((m[0] + r.randint(20, 1500), m[1], m[2], m[3]))
            else:
                out.append(m)
        return out


def _walked_in(segs: list[Seg], i: int) -> bool:
    """Does segment ``i`` begin with a walk into its room from another one, to lie or
    sit down there (``LIE_DOWN``)?  The first segment of a day is the night going on;
    coming home from an outing is counted with the outing's steps."""
    if i <= 0 or segs[i].act not in LIE_DOWN or segs[i].start < 0:
        return False
    before = segs[i - 1]
    return before.room != segs[i].room and before.room not in AWAY


def _poisson(r: random.Random, mean: float) -> int:
    n, acc, limit = 0, r.random(), math.exp(-mean)
    while acc > limit:
        n += 1
        acc *= r.random()
    return n
