"""Per-device rate limit: a topic flood from one device does not starve the others."""

from __future__ import annotations

import json
from pathlib import Path

from carecircle.common.clock import ManualClock
from carecircle.gateway.outbox import Lane
from carecircle.gateway.ratelimit import DeviceRateLimiter
from carecircle.gateway.runtime import Gateway
from carecircle.gateway.settings import GatewaySettings

from .conftest import T0, config


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_and_is_bounded() -> None:
    ticks = Ticks()
    lim = DeviceRateLimiter(rate_per_s=2, burst=3, max_devices=2, monotonic=ticks)
    assert [lim.allow("a") for _ in range(5)] == [True, True, True, False, False]
    ticks.t = 1.0  # two tokens back
    assert [lim.allow("a") for _ in range(3)] == [True, True, False]
    ticks.t = 100.0  # never more than the burst
    assert sum(lim.allow("a") for _ in range(10)) == 3
    assert lim.dropped == {"a": 2 + 1 + 7}
    lim.allow("b")
    lim.allow("c")  # evicts the least recently used bucket
    assert len(lim._buckets) == 2
    assert DeviceRateLimiter(rate_per_s=0, burst=1).allow("x")  # 0 = no limit


def test_flood_from_one_device_is_cut_others_and_alarms_pass(tmp_path: Path) -> None:
    s = GatewaySettings(
        gateway_id="gw-0001",
        queue_path=tmp_path / "q.sqlite3",
        device_rate_per_s=5,
        device_rate_burst=20,
    )
    gw = Gateway(s, clock=ManualClock(T0))
    ticks = Ticks()
    gw.limiter.monotonic = ticks
    assert gw.use_config(config())
    flood = 0
    for i in range(1000):  # one motion sensor floods: 1000 messages in the same instant
        gw.handle_native(
            "zigbee2mqtt/living_motion", json.dumps({"occupancy": i % 2 == 0}).encode()
        )
        flood += 1
        if i % 100 == 0:  # meanwhile the neighbours speak, and someone presses SOS
            gw.handle_native("zigbee2mqtt/bedroom_climate", b'{"temperature": 21.0}')
            gw.handle_native("zigbee2mqtt/sos_tuya", b'{"action": "emergency"}')
    routine = [json.loads(r.body) for r in gw.outbox.next_rows(Lane.ROUTINE, 0, 100_000)]
    alarms = [json.loads(r.body) for r in gw.outbox.next_rows(Lane.ALARM, 0, 100_000)]
    by_dev: dict[str, int] = {}
    for b in routine:
        by_dev[b["dev"]] = by_dev.get(b["dev"], 0) + 1
    assert by_dev["dev-pir"] == 20  # the burst, then nothing (the clock did not move)
    assert by_dev["dev-th"] == 10  # every neighbour reading kept
    assert sum(1 for a in alarms if a["dev"] == "dev-sos") == 10  # alarms never limited
    assert gw.counter_values()["rate_limited"] == flood - 20 == gw.limiter.total_dropped
    ticks.t = 2.0  # the flood's bucket refills at 5/s
    for _ in range(20):
        gw.handle_native("zigbee2mqtt/living_motion", b'{"occupancy": true}')
    routine = [json.loads(r.body) for r in gw.outbox.next_rows(Lane.ROUTINE, 0, 100_000)]
    assert sum(1 for b in routine if b["dev"] == "dev-pir") == 30
