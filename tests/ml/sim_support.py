"""Load a device_sim run into a test database the way the platform would store it.

The simulator's native messages go through the gateway's adapters and normaliser
(one registry holding every provisioned device; each envelope then carries its own
device's gateway), are batched per gateway as the uplink contract says and stored by
ingest's :class:`BatchWriter` (COPY, ``rollup_dirty``) with a clock at the message's
simulated time; then the rollups are refreshed.  No broker: this checks what the
models get from simulated devices, not the transport.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import psycopg

from carecircle.common.contract import Envelope
from carecircle.common.contract.provisioning import Provisioning
from carecircle.common.contract.topics import Topics, Uplink
from carecircle.device_sim.engine.stream import Simulation
from carecircle.device_sim.engine.world import SimConfig, build_world
from carecircle.device_sim.incidents.model import Incident
from carecircle.gateway.adapters import Bases
from carecircle.gateway.pipeline.normalise import Normaliser
from carecircle.gateway.registry.registry import Registry
from carecircle.ml.evaluation.records import TruthIncident
from carecircle.platform.ingest.writer import BatchWriter, Inbound
from carecircle.platform.registry.service import provision
from carecircle.platform.rollups import refresh_rollups

Conn = psycopg.Connection[Any]
TOPICS = Topics("cc")


@dataclass
class LoadReport:
    messages: int = 0
    envelopes: int = 0
    readings: int = 0
    events: int = 0
    gateway_dead: int = 0
    ingest_dead: int = 0
    write_s: float = 0.0
    incidents: list[Incident] = field(default_factory=list)


def simulate(pop: Provisioning, seed: int, start: datetime, days: float) -> Simulation:
    config = SimConfig(seed=seed)
    start_ms = int(start.timestamp() * 1000)
    return Simulation(build_world(pop, config), start_ms, start_ms + int(days * 86_400_000))


def _registry(pop: Provisioning) -> tuple[Registry, dict[str, str]]:
    by_native = {(d.binding.family, d.binding.native_id): d.binding for d in pop.devices}
    gateway_of = {d.binding.id: d.gateway_id for d in pop.devices}
    return Registry("gw-sim", "sim", 0, MappingProxyType(by_native)), gateway_of


def _batches(envs: list[Envelope], gateway_of: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    per: dict[str, list[Envelope]] = {}
    for env in envs:
        gw = gateway_of[env.dev]
        per.setdefault(gw, []).append(env.model_copy(update={"gw": gw}))
    for gw, items in per.items():
        for k in range(0, len(items), 2000):
            doc = {
                "v": 1,
                "gw": gw,
                "sent_at": items[-1].gw_ts.isoformat(),
                "items": [json.loads(e.to_json()) for e in items[k : k + 2000]],
            }
            yield TOPICS.uplink(gw, Uplink.BATCH), json.dumps(doc).encode()


def load(
    url: str,
    pop: Provisioning,
    sim: Simulation,
    *,
    flush_every_s: float = 3600.0,
    provisioned: bool = False,
) -> LoadReport:
    """Provision ``pop`` (unless done), run ``sim`` to its end into the store, refresh
    the rollups; returns counts and the incidents."""
    report = LoadReport()
    with psycopg.connect(url, autocommit=True) as conn:
        if not provisioned:
            provision(conn, pop)
    registry, gateway_of = _registry(pop)
    normaliser = Normaliser("gw-sim", Bases())
    now = [datetime.now(UTC)]
    writer = BatchWriter(
        lambda: psycopg.connect(url, autocommit=True), TOPICS, clock=lambda: now[0]
    )
    pending: list[Envelope] = []
    flushed_at: float | None = None

    def flush() -> None:
        t0 = time.perf_counter()
        for topic, payload in _batches(pending, gateway_of):
            out = writer.write([Inbound(topic, payload, now[0])])
            report.readings += out.readings_written
            report.events += out.events_written
            report.ingest_dead += len(out.dead_letters)
        pending.clear()
        report.write_s += time.perf_counter() - t0

    try:
        for t_ms, topic, payload, _retain in sim:
            at = datetime.fromtimestamp(t_ms / 1000, UTC)
            now[0] = at
            report.messages += 1
            out = normaliser.process(topic, payload.encode(), registry, at)
            if out.learned or out.forget:
                registry = registry.with_ha(out.learned, out.forget)
            report.gateway_dead += len(out.dead_letters)
            report.envelopes += len(out.envelopes)
            pending.extend(out.envelopes)
            if flushed_at is None:
                flushed_at = t_ms / 1000
            if t_ms / 1000 - flushed_at >= flush_every_s:
                flush()
                flushed_at = t_ms / 1000
        flush()
    finally:
        writer.close()
    report.incidents = sim.incidents()
    with psycopg.connect(url, autocommit=True) as conn:
        while refresh_rollups(conn, now[0]).minute_buckets:
            pass
    return report


def truth(incidents: Iterable[Incident]) -> list[TruthIncident]:
    return [TruthIncident.from_json(json.loads(i.to_json())) for i in incidents]
