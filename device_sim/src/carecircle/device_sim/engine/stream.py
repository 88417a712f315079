"""The whole simulation as one time-ordered stream of native MQTT messages.

``Simulation(world, start, end)`` is a pure, deterministic generator:
``(population, seed, start, end) -> [(time ms, topic, payload, retain), …]`` plus the
ground truth.  Sites are rendered a day at a time, lazily, and merged on
``(time, site order, position)``, so ties are broken the same way on every run.
Publishing (live, paced) and writing files are thin edges on top of it.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from carecircle.device_sim.engine.sites import Msg, SiteSim
from carecircle.device_sim.engine.world import World
from carecircle.device_sim.incidents.model import Incident, sort_key
from carecircle.device_sim.incidents.planner import inject
from carecircle.device_sim.simtime import DAY_MS, local_midnight_ms


@dataclass
class Counters:
    messages: int = 0
    bytes: int = 0
    by_family: dict[str, int] = field(default_factory=dict)


class Simulation:
    def __init__(self, world: World, start_ms: int, end_ms: int | None) -> None:
        if end_ms is not None and end_ms <= start_ms:
            raise ValueError("the simulation must end after it starts")
        self.world = world
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.first_day_ms = local_midnight_ms(start_ms)
        self.sites = [SiteSim(world, m, self.first_day_ms) for m in world.sites]
        self._by_id = {s.m.id: s for s in self.sites}
        self._day = [0] * len(self.sites)
        self._pending: list[list[Msg]] = [[] for _ in self.sites]
        self._pos = [0] * len(self.sites)
        self._heap: list[tuple[int, int, int]] = []
        self._gen = [0] * len(self.sites)
        self.now_ms = start_ms
        self._preloaded: dict[int, list[Msg]] = {}
        for i, site in enumerate(self.sites):
            self._pending[i] = site.announce(start_ms)
            self._push(i)

    # -- the merge ------------------------------------------------------------------------
    def _load_next_day(self, i: int) -> bool:
        d = self._day[i]
        day0 = self.first_day_ms + d * DAY_MS
        if self.end_ms is not None and day0 >= self.end_ms:
            return False
        pre = self._preloaded.pop(i, None) if d == 0 else None
        msgs = pre if pre is not None else self.sites[i].day(d)
        self._day[i] = d + 1
        self._pending[i] = [m for m in msgs if m[0] >= self.start_ms]
        self._pos[i] = 0
        return True

    def prime(self) -> None:
        """Render every site's first day now (so a live run starts without a pause)."""
        for i, site in enumerate(self.sites):
            if self._day[i] == 0 and i not in self._preloaded:
                self._preloaded[i] = site.day(0)

    def _push(self, i: int) -> None:
        while self._pos[i] >= len(self._pending[i]):
            if not self._load_next_day(i):
                return
        heapq.heappush(self._heap, (self._pending[i][self._pos[i]][0], i, self._gen[i]))

    def __iter__(self) -> Iterator[Msg]:
        return self

    def __next__(self) -> Msg:
        heap = self._heap
        while heap:
            _, i, gen = heap[0]
            if gen != self._gen[i]:
                heapq.heappop(heap)  # superseded by a re-render
                continue
            pending = self._pending[i]
            pos = self._pos[i]
            msg = pending[pos]
            if self.end_ms is not None and msg[0] >= self.end_ms:
                heapq.heappop(heap)
                continue
            pos += 1
            self._pos[i] = pos
            if pos < len(pending):
                heapq.heapreplace(heap, (pending[pos][0], i, gen))
            else:
                heapq.heappop(heap)
                self._push(i)
            self.now_ms = msg[0]
            return msg
        raise StopIteration

    def peek_time(self) -> int | None:
        while self._heap:
            t, i, gen = self._heap[0]
            if gen == self._gen[i]:
                return t
            heapq.heappop(self._heap)
        return None

    # -- ground truth ---------------------------------------------------------------------
    def incidents(self, until_ms: int | None = None) -> list[Incident]:
        """Ground truth so far: incidents that start before ``until_ms`` (default: the end)."""
        hi = until_ms if until_ms is not None else self.end_ms
        out = [
            inc
            for site in self.sites
            for inc in site.incidents.values()
            if inc.end_ms > self.start_ms and (hi is None or inc.start_ms < hi)
        ]
        return sorted(out, key=sort_key)

    # -- live injection -------------------------------------------------------------------
    def site_for(self, resident: str | None, site: str | None, device: str | None) -> SiteSim:
        w = self.world
        site_id = site
        if resident is not None:
            site_id = w.site_of_resident.get(resident)
            if site_id is None:
                raise KeyError(f"unknown resident {resident}")
        elif device is not None:
            site_id = w.site_of_device.get(device)
            if site_id is None:
                raise KeyError(f"unknown device {device}")
        if site_id is None or site_id not in self._by_id:
            raise KeyError(f"unknown site {site_id}")
        return self._by_id[site_id]

    def inject(
        self,
        kind: str,
        *,
        at_ms: int,
        resident: str | None = None,
        site: str | None = None,
        device: str | None = None,
        duration_s: int | None = None,
        via: str | None = None,
    ) -> Incident:
        """Start an incident at ``at_ms`` and re-render the rest of the site's current day."""
        sim = self.site_for(resident, site, device)
        i = self.sites.index(sim)
        d = max(0, self._day[i] - 1)
        day0 = self.first_day_ms + d * DAY_MS
        inc = inject(
            sim,
            d,
            kind,
            # the next whole second: messages up to at_ms are already out, and the
            # incident's first message (smoke:true, …) must come after them
            at_s=(at_ms - day0) // 1000 + 1,
            resident=resident,
            device_id=device,
            duration_s=duration_s,
            via=via,
        )
        if self._day[i] > 0:
            msgs = sim.rerender(d)
            self._pending[i] = [m for m in msgs if m[0] > at_ms]
            self._pos[i] = 0
            self._gen[i] += 1
            self._push(i)
        return inc


def stream_digest(sim: Simulation) -> tuple[str, int]:
    """sha256 over the whole stream and the message count (for determinism checks)."""
    h = hashlib.sha256()
    n = 0
    for t, topic, payload, retain in sim:
        h.update(f"{t}\t{topic}\t{int(retain)}\t{payload}\n".encode())
        n += 1
    return h.hexdigest(), n
