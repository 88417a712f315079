"""Device adapters: one module per device family, each a pure function

``adapt(topic, payload, registry, received_at, base) -> AdapterResult``

from a native MQTT message to canonical drafts and dead letters.  Adding a vendor is
one module here, one entry in :data:`ADAPTERS` and one test file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from carecircle.gateway.adapters import bedsensor, careband, homeassistant, zigbee2mqtt
from carecircle.gateway.adapters.base import AdapterResult, DeadLetter, Draft, HaEntity, ignored
from carecircle.gateway.registry.registry import Registry

Adapter = Callable[[str, bytes, Registry, datetime, str], AdapterResult]


@dataclass(frozen=True)
class Bases:
    """Native topic bases on the local broker (prefixable, so tests can isolate them)."""

    zigbee2mqtt: str = "zigbee2mqtt"
    careband: str = "careband"
    bedsensor: str = "bedsensor"
    homeassistant: str = "homeassistant"

    def subscriptions(self) -> list[str]:
        return [
            f"{b}/#" for b in (self.zigbee2mqtt, self.careband, self.bedsensor, self.homeassistant)
        ]


ADAPTERS: list[tuple[str, Adapter]] = [
    ("zigbee2mqtt", zigbee2mqtt.adapt),
    ("careband", careband.adapt),
    ("bedsensor", bedsensor.adapt),
    ("homeassistant", homeassistant.adapt),
]


def route(
    topic: str, payload: bytes, registry: Registry, received_at: datetime, bases: Bases
) -> AdapterResult:
    """Hand a native message to the adapter whose base it is under.

    Learned Home Assistant state topics may live anywhere; they are tried when no
    family base claims the topic.
    """
    for name, adapter in ADAPTERS:
        base: str = getattr(bases, name)
        if topic.startswith(base + "/"):
            return adapter(topic, payload, registry, received_at, base)
    if topic in registry.ha_by_topic:
        return homeassistant.adapt(topic, payload, registry, received_at, bases.homeassistant)
    return ignored("no adapter for this topic")


__all__ = ["ADAPTERS", "AdapterResult", "Bases", "DeadLetter", "Draft", "HaEntity", "route"]
