"""The device registry: which device is where, as the platform last told this gateway."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from carecircle.common.contract import PRESENCE_TYPES, DeviceBinding, DeviceFamily, GatewayConfig

_BATHROOM_WORDS = re.compile(r"(^|[^a-z])(bath|bathroom|toilet|wc|restroom|washroom)([^a-z]|$)")


def is_bathroom(binding: DeviceBinding) -> bool:
    """Whether the device is bound in a bathroom/toilet.

    ``room_kind`` (when the platform sends it) decides; otherwise the room id is read
    for the words bath/bathroom/toilet/wc (e.g. ``hh-0001-bath``).
    """
    if binding.room_kind is not None:
        return binding.room_kind in ("bathroom", "toilet")
    return binding.room is not None and bool(_BATHROOM_WORDS.search(binding.room.lower()))


def is_bathroom_presence(binding: DeviceBinding) -> bool:
    """A presence sensor bound in a bathroom reports ``bathroom_presence``, not ``motion``."""
    if binding.type == "bathroom_presence_sensor":
        return True
    return binding.type in PRESENCE_TYPES and is_bathroom(binding)


@dataclass(frozen=True)
class HaEntity:
    """A Home Assistant entity learned from MQTT discovery."""

    key: str  #: the discovery config topic (unique per entity)
    component: str
    device_class: str | None
    state_topic: str
    #: Candidate native ids to match the registry with: unique_id, node/object, object, node.
    native_ids: tuple[str, ...]
    payload_on: str = "ON"
    payload_off: str = "OFF"
    #: ``value_json.<path>`` from a ``{{ value_json.x }}`` template, else ``None``.
    json_path: tuple[str, ...] | None = None
    availability_topic: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"


@dataclass(frozen=True)
class Registry:
    """An immutable snapshot; the runtime swaps in a new one when the config changes."""

    gateway_id: str
    site_id: str
    version: int = -1
    by_native: Mapping[tuple[DeviceFamily, str], DeviceBinding] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: Home Assistant entities learned from discovery, by state/availability topic.
    ha_by_topic: Mapping[str, HaEntity] = field(default_factory=lambda: MappingProxyType({}))
    ha_by_key: Mapping[str, HaEntity] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def empty(cls, gateway_id: str, site_id: str) -> Registry:
        return cls(gateway_id, site_id)

    @classmethod
    def from_config(cls, config: GatewayConfig, previous: Registry | None = None) -> Registry:
        index = {(d.family, d.native_id): d for d in config.devices}
        base = previous or cls(config.gw, config.site)
        return replace(
            base,
            gateway_id=config.gw,
            site_id=config.site,
            version=config.version,
            by_native=MappingProxyType(index),
        )

    def lookup(self, family: DeviceFamily, native_id: str) -> DeviceBinding | None:
        return self.by_native.get((family, native_id))

    @property
    def devices(self) -> list[DeviceBinding]:
        return list(self.by_native.values())

    def with_ha(self, learned: Iterable[HaEntity], forget: Iterable[str]) -> Registry:
        by_key = dict(self.ha_by_key)
        for key in forget:
            by_key.pop(key, None)
        for entity in learned:
            by_key[entity.key] = entity
        by_topic: dict[str, HaEntity] = {}
        for entity in by_key.values():
            by_topic[entity.state_topic] = entity
            if entity.availability_topic:
                by_topic.setdefault(entity.availability_topic, entity)
        return replace(
            self, ha_by_key=MappingProxyType(by_key), ha_by_topic=MappingProxyType(by_topic)
        )
