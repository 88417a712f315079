"""Per-sensor liveness: a silent sensor behind a live gateway is reported, once.

Pure bookkeeping over injected times: the runtime tells it who spoke and when, and
asks which devices have now been silent longer than their own ``offline_timeout_s``.
A device never heard since start-up is measured from start-up (a grace period, so a
restart does not flag every sensor at once), or from when it was provisioned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from carecircle.common.contract import DeviceBinding


@dataclass(frozen=True)
class Silent:
    binding: DeviceBinding
    silent_s: float


class LivenessTracker:
    def __init__(self, started: datetime) -> None:
        self._started = started
        self._last: dict[str, datetime] = {}
        self._watched_since: dict[str, datetime] = {}
        self._offline: set[str] = set()

    def watch(self, device_ids: Iterable[str], now: datetime) -> None:
        """Devices newly provisioned at ``now`` get their grace period from then."""
        for device_id in device_ids:
            self._watched_since.setdefault(device_id, now)

    def seen(self, device_id: str, at: datetime) -> bool:
        """Record that ``device_id`` spoke; ``True`` when it had been reported offline."""
        before = self._last.get(device_id)
        if before is None or at > before:
            self._last[device_id] = at
        if device_id in self._offline:
            self._offline.discard(device_id)
            return True
        return False

    def last_seen(self, device_id: str) -> datetime | None:
        return self._last.get(device_id)

    def due(self, bindings: Iterable[DeviceBinding], now: datetime) -> list[Silent]:
        """Devices that have just gone silent for longer than their timeout (reported once)."""
        out = []
        for b in bindings:
            if b.id in self._offline:
                continue
            since = self._last.get(b.id) or self._watched_since.get(b.id, self._started)
            silent = (now - since).total_seconds()
            if silent > b.offline_timeout_s:
                self._offline.add(b.id)
                out.append(Silent(b, silent))
        return out

    @property
    def offline(self) -> frozenset[str]:
        return frozenset(self._offline)
