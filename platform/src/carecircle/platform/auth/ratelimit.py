"""Login rate limiting: a token bucket per (username, client address), in this process.

One API process (the default) sees every login, so an in-process bucket is enough.
Several API processes would each keep their own buckets (an attacker gets N times
the attempts); such a deployment needs a shared store — see docs/api.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from carecircle.common.clock import Clock

MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class LoginRateLimiter:
    def __init__(self, clock: Clock, burst: int, refill_s: float) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._refill_s = refill_s
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, username: str, client: str) -> tuple[bool, float]:
        """Take one attempt; returns (allowed, seconds until the next attempt is allowed)."""
        now = self._clock.now().timestamp()
        key = (username.lower(), client)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_KEYS:
                    self._evict(now)
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            bucket.tokens = min(
                self._burst, bucket.tokens + (now - bucket.updated) / self._refill_s
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return True, 0.0
            return False, (1.0 - bucket.tokens) * self._refill_s

    def reset(self, username: str, client: str) -> None:
        """A successful login clears the bucket."""
        with self._lock:
            self._buckets.pop((username.lower(), client), None)

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) / self._refill_s >= self._burst
        ]
        for k in full or list(self._buckets)[: MAX_KEYS // 10]:
            del self._buckets[k]
