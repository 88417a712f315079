"""Per-device rate limiting: a topic flood from one device must not starve the others.

A token bucket per device id (``rate_per_s`` items per second, up to ``burst`` saved).
Only routine items are limited; alarms, status and heartbeats are never dropped here.
The table of buckets is bounded (least recently used evicted first).  Time is injected
(a monotonic seconds function) so tests can move it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class DeviceRateLimiter:
    rate_per_s: float
    burst: float
    max_devices: int = 10_000
    monotonic: Callable[[], float] = time.monotonic
    dropped: dict[str, int] = field(default_factory=dict)
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def allow(self, device: str) -> bool:
        """Take one token for ``device``; ``False`` means drop the item (and it is counted)."""
        if not self.enabled:
            return True
        now = self.monotonic()
        b = self._buckets.get(device)
        if b is None:
            b = _Bucket(self.burst, now)
            self._buckets[device] = b
            if len(self._buckets) > self.max_devices:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(device)
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate_per_s)
            b.at = now
        if b.tokens >= 1:
            b.tokens -= 1
            return True
        if len(self.dropped) < self.max_devices or device in self.dropped:
            self.dropped[device] = self.dropped.get(device, 0) + 1
        return False

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())
