"""The canonical readings every ingest benchmark uses, as MQTT batches and as table rows.

The pipeline and the raw baselines are fed exactly the same data, so their ratio
compares work, not inputs.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from carecircle.common.contract import Topics, Uplink

CODES = (
    ("heart_rate", 55, 100),
    ("spo2", 92, 99),
    ("room_temperature", 14, 26),
    ("humidity", 30, 70),
    ("steps", 0, 40),
)


@dataclass(frozen=True)
class Workload:
    messages: list[tuple[str, bytes]]  #: (topic, payload) as gateways publish them
    rows: list[tuple[object, ...]]  #: the same readings as `readings` rows
    readings: int


def make_workload(
    readings: int,
    *,
    devices: int = 1000,
    per_batch: int = 250,
    gateways: int = 50,
    seed: int = 7,
    root: str = "cc",
) -> Workload:
    """``readings`` canonical readings from ``devices`` devices behind ``gateways`` gateways."""
    rng = random.Random(seed)
    topics = Topics(root)
    start = datetime.now(UTC) - timedelta(minutes=30)
    now_iso = datetime.now(UTC).isoformat()
    per_gateway: dict[int, list[dict[str, object]]] = {g: [] for g in range(gateways)}
    rows: list[tuple[object, ...]] = []
    for i in range(readings):
        dev = i % devices
        gw = dev % gateways
        code, lo, hi = CODES[dev % len(CODES)]
        value = float(rng.randint(lo, hi))
        ts = start + timedelta(milliseconds=i)
        mid = uuid.UUID(int=rng.getrandbits(128), version=4)
        item = {
            "v": 1,
            "id": str(mid),
            "kind": "reading",
            "gw": f"gw-{gw:04d}",
            "dev": f"dev-{dev:05d}",
            "res": f"r-{dev:05d}",
            "site": f"hh-{gw:04d}",
            "ts": ts.isoformat(),
            "gw_ts": ts.isoformat(),
            "payload": {"code": code, "value": value},
        }
        per_gateway[gw].append(item)
        rows.append(
            (
                ts,
                datetime.now(UTC),
                mid,
                f"gw-{gw:04d}",
                f"dev-{dev:05d}",
                f"r-{dev:05d}",
                f"hh-{gw:04d}",
                code,
                value,
            )
        )
    messages: list[tuple[str, bytes]] = []
    for gw, items in per_gateway.items():
        topic = topics.uplink(f"gw-{gw:04d}", Uplink.BATCH)
        for k in range(0, len(items), per_batch):
            chunk = items[k : k + per_batch]
            messages.append(
                (
                    topic,
                    json.dumps(
                        {"v": 1, "gw": f"gw-{gw:04d}", "sent_at": now_iso, "items": chunk}
                    ).encode(),
                )
            )
    rng.shuffle(messages)
    return Workload(messages, rows, readings)
