"""Batch generation on several cores: sites rendered in worker processes, merged in order.

Sites are independent, so worker processes each own a share of the sites and render
them day by day (a day ahead of the writer).  The parent merges each day's per-site
lists with a stable merge on time in site order, which is exactly the order of the
single-process :class:`~carecircle.device_sim.engine.stream.Simulation` (ties on time
go to the lower site index, then to the earlier message of that site), so the bytes
are the same whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import heapq
import multiprocessing as mp
from collections.abc import Iterator
from multiprocessing.connection import Connection
from operator import itemgetter

from carecircle.common.contract.provisioning import Provisioning
from carecircle.device_sim.engine.sites import Msg, SiteSim
from carecircle.device_sim.engine.world import SimConfig, World, build_world
from carecircle.device_sim.incidents.model import Incident, sort_key
from carecircle.device_sim.simtime import DAY_MS, local_midnight_ms

_time = itemgetter(0)


def _worker(
    conn: Connection, pop_json: str, config: SimConfig, first_day_ms: int, indices: list[int]
) -> None:
    world = build_world(Provisioning.model_validate_json(pop_json), config)
    sims = {i: SiteSim(world, world.sites[i], first_day_ms) for i in indices}
    while True:
        cmd = conn.recv()
        if cmd[0] == "day":
            conn.send([sims[i].day(cmd[1]) for i in indices])
        elif cmd[0] == "incidents":
            conn.send([inc for i in indices for inc in sims[i].incidents.values()])
        else:
            conn.close()
            return


class ParallelSimulation:
    """A bounded simulation rendered by ``workers`` processes (same stream as ``Simulation``)."""

    def __init__(
        self, pop: Provisioning, config: SimConfig, start_ms: int, end_ms: int, workers: int
    ) -> None:
        if end_ms <= start_ms:
            raise ValueError("the simulation must end after it starts")
        self.world: World = build_world(pop, config)
        self.pop_json = pop.model_dump_json()
        self.config = config
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.first_day_ms = local_midnight_ms(start_ms)
        self.workers = max(1, workers)
        self._incidents: list[Incident] = []

    def __iter__(self) -> Iterator[Msg]:
        n_sites = len(self.world.sites)
        shares = [list(range(w, n_sites, self.workers)) for w in range(self.workers)]
        shares = [s for s in shares if s]
        ctx = mp.get_context("spawn")
        conns: list[Connection] = []
        procs = []
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                args=(child, self.pop_json, self.config, self.first_day_ms, share),
                daemon=True,
            )
            proc.start()
            conns.append(parent)
            procs.append(proc)
        announce = [
            SiteSim(self.world, m, self.first_day_ms).announce(self.start_ms)
            for m in self.world.sites
        ]
        try:
            days = 0
            while self.first_day_ms + days * DAY_MS < self.end_ms:
                days += 1
            for c in conns:
                c.send(("day", 0))
            for d in range(days):
                per_site: list[list[Msg]] = [[] for _ in range(n_sites)]
                for share, c in zip(shares, conns, strict=True):
                    for i, msgs in zip(share, c.recv(), strict=True):
                        per_site[i] = msgs
                if d + 1 < days:
                    for c in conns:
                        c.send(("day", d + 1))
                lists = []
                for i, msgs in enumerate(per_site):
                    if d == 0:
                        msgs = announce[i] + [m for m in msgs if m[0] >= self.start_ms]
                    lists.append(msgs)
                for msg in heapq.merge(*lists, key=_time):
                    if msg[0] >= self.end_ms:
                        continue
                    yield msg
            found: list[Incident] = []
            for c in conns:
                c.send(("incidents",))
                found.extend(c.recv())
            self._incidents = found
        finally:
            for c in conns:
                with contextlib.suppress(OSError):
                    c.send(("stop",))
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.terminate()

    def incidents(self, until_ms: int | None = None) -> list[Incident]:
        """Ground truth of the finished run (incidents overlapping the simulated span)."""
        hi = until_ms if until_ms is not None else self.end_ms
        out = [i for i in self._incidents if i.end_ms > self.start_ms and i.start_ms < hi]
        return sorted(out, key=sort_key)
